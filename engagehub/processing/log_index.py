"""Lookup keys of the log (user, anonymous id, message, campaign, contact), after each commit.

The log itself carries only its dedup index so that acknowledging an event stays cheap; this
processor keeps ``event_index(k, seq)`` where ``k`` is a 63-bit hash of the key. A hash
collision only adds a candidate row: readers still compare the real column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from engagehub.model import StoredEvent
from engagehub.storage.base import Connection

KEYED_COLUMNS = {
    "user_id": "u",
    "anonymous_id": "a",
    "message_id": "m",
    "campaign_id": "c",
    "contact": "k",
}


def key_hash(kind: str, value: str) -> int:
    """Signed 64-bit hash of one lookup key (fits SQLite INTEGER and PostgreSQL BIGINT)."""
    digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LogIndex:
    """Derived table ``event_index``."""

    name = "log_index"
    where: str | None = None
    payload = False

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Index every non-empty key of these events (re-applying is harmless)."""
        rows: set[tuple[int, int]] = set()
        hashes: dict[tuple[str, str], int] = {}  # a person's keys repeat across their events
        for ev in events:
            for column, kind in KEYED_COLUMNS.items():
                value = getattr(ev, column)
                if value:
                    k = hashes.get((kind, value))
                    if k is None:
                        k = hashes[(kind, value)] = key_hash(kind, value)
                    rows.add((k, ev.seq))
        conn.executemany(
            "INSERT INTO event_index (k, seq) VALUES (?, ?) ON CONFLICT (k, seq) DO NOTHING",
            sorted(rows),
        )

    def reset(self, conn: Connection) -> None:
        """Drop the index."""
        conn.execute("DELETE FROM event_index")
