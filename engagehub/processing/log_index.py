"""Lookup keys of the log (user, anonymous id, message, campaign, contact), right behind ingest.

The log itself carries only its dedup index so that acknowledging an event stays cheap; this
processor keeps ``event_index(k, seq)`` where ``k`` is a 64-bit hash of the key. It is one
``INSERT ... SELECT`` per window: the hash is computed inside the database (PostgreSQL's
``md5``, a registered function on SQLite), identical to :func:`key_hash` used by readers. A hash
collision only adds a candidate row: readers still compare the real column.
"""

from __future__ import annotations

import hashlib

from engagehub.processing.window import Window
from engagehub.storage.base import Connection

KEYED_COLUMNS = {
    "user_id": "u",
    "anonymous_id": "a",
    "message_id": "m",
    "campaign_id": "c",
    "contact": "k",
}


def key_hash(kind: str, value: str) -> int:
    """Signed 64-bit hash of one lookup key: the first 8 bytes of md5("kind:value")."""
    digest = hashlib.md5(f"{kind}:{value}".encode()).digest()  # noqa: S324 - not for security
    return int.from_bytes(digest[:8], "big", signed=True)


def key_sql(conn: Connection, kind: str, column: str) -> str:
    """SQL computing ``key_hash(kind, column)`` in the database."""
    if conn.dialect == "postgresql":
        return f"('x' || left(md5('{kind}:' || {column}), 16))::bit(64)::bigint"
    return f"eh_key('{kind}', {column})"


class LogIndex:
    """Derived table ``event_index``."""

    name = "log_index"
    shard_key = "seq"  # no order between events matters: any split of the log works

    def apply_window(self, window: Window) -> None:
        """Index every non-empty key of the window's events (one statement)."""
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
        conn.execute(
            "INSERT INTO event_index (k, seq) SELECT k, seq FROM ("
            + " UNION ALL ".join(parts)
            + ") AS keys WHERE 1 = 1 ORDER BY k, seq ON CONFLICT (k, seq) DO NOTHING",
            args,
        )

    def reset(self, conn: Connection) -> None:
        """Drop the index."""
        conn.execute("DELETE FROM event_index")
