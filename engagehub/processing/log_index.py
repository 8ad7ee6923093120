"""Lookup keys of the log (user, anonymous id, message, campaign, contact), right behind ingest.

The log itself carries only its dedup index so that acknowledging an event stays cheap; this
processor keeps ``event_index``: per window, one posting list ``(k, first_seq, seqs)`` per key,
where ``k`` is a 64-bit hash of the key (``storage.event_index``). It is one ``INSERT ... SELECT
... GROUP BY k`` per window: the hash is computed inside the database (PostgreSQL's ``md5``, a
registered function on SQLite), identical to ``key_hash`` used by readers. A hash collision only
adds candidates: readers still compare the real column.
"""

from __future__ import annotations

from engagehub.processing.window import Window
from engagehub.storage.base import Connection
from engagehub.storage.event_index import FOLLOWER, KEYED_COLUMNS, insert_sql, key_sql


class LogIndex:
    """Derived table ``event_index``."""

    name = FOLLOWER
    shard_key = "seq"  # no order between events matters: any split of the log works

    def apply_window(self, window: Window) -> None:
        """A posting list per non-empty key of the window's events (one statement)."""
        conn = window.conn
        cond, params = window.bounds()
        parts = []
        args: list[object] = []
        for column, kind in KEYED_COLUMNS.items():
            parts.append(
                f"SELECT {key_sql(conn, kind, column)} AS k, seq FROM events "
                f"WHERE {cond} AND {column} IS NOT NULL AND {column} <> ''"
            )
            args.extend(params)
        conn.execute(insert_sql(conn, " UNION ALL ".join(parts)), args)

    def reset(self, conn: Connection) -> None:
        """Drop the index."""
        conn.execute("DELETE FROM event_index")
