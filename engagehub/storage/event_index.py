"""The lookup keys of ``event_index(k, seq)``: which columns are keyed and how a key is hashed.

One definition for the ``log_index`` processor that fills the table, the SQLite function that
computes the hash inside the database, and every reader (event queries, erasure), so a writer and
a reader can never disagree on a key.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engagehub.storage.base import Connection

# The follower that fills event_index (its cursor name; shards are "log_index#i/n").
FOLLOWER = "log_index"

KEYED_COLUMNS = {
    "user_id": "u",
    "anonymous_id": "a",
    "message_id": "m",
    "campaign_id": "c",
    "contact": "k",
    "COALESCE(event, vendor_event)": "n",  # the event's name: audiences, name filters
}
NAME = "COALESCE(event, vendor_event)"
"""The keyed expression of an event's name (canonical, else the vendor's)."""


def key_hash(kind: str, value: str) -> int:
    """Signed 64-bit hash of one lookup key: the first 8 bytes of md5("kind:value")."""
    digest = hashlib.md5(f"{kind}:{value}".encode()).digest()  # noqa: S324 - not for security
    return int.from_bytes(digest[:8], "big", signed=True)


def key_sql(conn: Connection, kind: str, column: str) -> str:
    """SQL computing ``key_hash(kind, column)`` in the database."""
    if conn.dialect == "postgresql":
        return f"('x' || left(md5('{kind}:' || {column}), 16))::bit(64)::bigint"
    return f"eh_key('{kind}', {column})"


def indexed_upto(conn: Connection) -> int:
    """The log position up to which event_index is complete (its slowest shard when sharded)."""
    found = conn.scalar(
        "SELECT MIN(seq) FROM processor_offsets WHERE name = ? OR name LIKE ?",
        (FOLLOWER, FOLLOWER + "#%"),
    )
    return int(found or 0)


def keyed(conn: Connection, column: str, value: str) -> tuple[str, list[Any]]:
    """A ``seq IN (...)`` clause of the positions whose ``column`` (a key of
    ``event_index.KEYED_COLUMNS``) may equal ``value``: indexed ones plus the unindexed tail.
    Candidates only: keep the exact condition next to it (hashes can collide)."""
    clause = (
        "seq IN (SELECT seq FROM event_index WHERE k = ? "
        "UNION ALL SELECT seq FROM events WHERE seq > ?)"
    )
    return clause, [key_hash(KEYED_COLUMNS[column], value), indexed_upto(conn)]
