"""Lookup keys of the log (user, anonymous id, message, campaign, contact), right behind ingest.

The log itself carries only its dedup index so that acknowledging an event stays cheap; this
processor keeps ``event_index``: per window, one posting list ``(k, first_seq, seqs)`` per key,
where ``k`` is a 64-bit hash of the key (``storage.event_index.key_hash``, the same function
readers use). The window's keyed columns are read once and grouped in Python, each distinct key
hashed once: the single ``INSERT ... SELECT`` with the hash computed in SQL per posting and a
sort of every posting cost 10-25% more per window on SQLite. A hash collision only adds
candidates: readers still compare the real column.
"""

from __future__ import annotations

from engagehub.processing.window import Window
from engagehub.storage.base import Connection
from engagehub.storage.event_index import FOLLOWER, KEYED_COLUMNS, insert, postings


class LogIndex:
    """Derived table ``event_index``."""

    name = FOLLOWER
    shard_key = "seq"  # no order between events matters: any split of the log works

    def apply_window(self, window: Window) -> None:
        """A posting list per non-empty key of the window's events (one read, one insert)."""
        rows = window.conn.execute(*window.select("seq, " + ", ".join(KEYED_COLUMNS)))
        insert(window.conn, postings(rows))

    def reset(self, conn: Connection) -> None:
        """Drop the index."""
        conn.execute("DELETE FROM event_index")
