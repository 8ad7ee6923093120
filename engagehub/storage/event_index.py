"""``event_index``: which columns are keyed, how a key is hashed, how its positions are stored.

One definition for the ``log_index`` processor that fills the table, the SQLite function that
computes the hash inside the database, and every reader (event queries, erasure), so a writer and
a reader can never disagree on a key.

The table holds **posting lists**: one row ``(k, first_seq, seqs)`` per key and log_index window
(``seqs`` a JSON array on SQLite, ``BIGINT[]`` on PostgreSQL), not one row per key and event. A
window of 2,000 bench events writes ~1,300 rows instead of 8,000; those rows land at random places
of the B-tree (``k`` is a hash), so fewer rows means far fewer pages written per commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in

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


def indexed_upto(conn: Connection) -> int:
    """The log position up to which event_index is complete (its slowest shard when sharded)."""
    found = conn.scalar(
        "SELECT MIN(seq) FROM processor_offsets WHERE name = ? OR name LIKE ?",
        (FOLLOWER, FOLLOWER + "#%"),
    )
    return int(found or 0)


def postings(rows: Iterable[Sequence[Any]]) -> dict[int, list[int]]:
    """Posting lists ``{key hash: positions}`` of rows ``(seq, *values of KEYED_COLUMNS)`` in
    log order; each distinct key is hashed once (a window has ~8x fewer keys than postings).

    Grouped column by column (values, then one hash per distinct value): half the Python work
    of walking row by row (bench e2e's log: 2.6 against 4.3-5.0 us per event with the read).
    """
    table = list(rows)
    lists: dict[int, list[int]] = {}
    if not table:
        return lists
    seqs, *columns = zip(*table, strict=True)
    for kind, values in zip(KEYED_COLUMNS.values(), columns, strict=True):
        groups: dict[Any, list[int]] = {}
        for seq, value in zip(seqs, values, strict=True):
            if value:
                found = groups.get(value)
                if found is None:
                    groups[value] = [seq]
                else:
                    found.append(seq)
        for value, positions in groups.items():
            k = key_hash(kind, value)
            other = lists.get(k)  # two keys with one hash: one list, still in log order
            lists[k] = positions if other is None else sorted(other + positions)
    return lists


def insert(conn: Connection, lists: dict[int, list[int]]) -> None:
    """Store one posting list per key, in key order (each B-tree page is visited once)."""
    if conn.dialect == "postgresql":
        _copy(conn, lists)
        return
    conn.executemany(
        "INSERT INTO event_index (k, first_seq, seqs) VALUES (?, ?, ?) "
        "ON CONFLICT (k, first_seq) DO NOTHING",
        [(k, seqs[0], _encode(conn, seqs)) for k, seqs in sorted(lists.items())],
    )


def _copy(conn: Connection, lists: dict[int, list[int]]) -> None:
    """PostgreSQL: the lists in one ``COPY`` (text format: only integers, nothing to escape).

    ``executemany`` sent a statement per list: per 100k bench events ~53k of them, 3-5 CPU-s of
    psycopg's Python and PostgreSQL's per-statement work against ~1 for the COPY. No list can
    already be stored: ``first_seq`` is a position of this window, and a window is indexed once
    (its cursor moves in the same transaction; ``reset`` empties the table).
    """
    from engagehub.storage.postgres import PostgresConnection

    assert isinstance(conn, PostgresConnection)
    data = "".join(
        f"{k}\t{seqs[0]}\t{{{','.join(map(str, seqs))}}}\n" for k, seqs in sorted(lists.items())
    )
    if data:
        conn.copy("COPY event_index (k, first_seq, seqs) FROM STDIN", data)


def positions_sql(conn: Connection, where: str) -> str:
    """SQL selecting the log positions of the posting lists matching ``where`` (over ``k``)."""
    if conn.dialect == "postgresql":
        return f"SELECT unnest(seqs) FROM event_index WHERE {where}"
    return f"SELECT j.value FROM event_index, json_each(event_index.seqs) j WHERE {where}"


def decode(seqs: Any) -> list[int]:
    """One row's positions (a JSON array on SQLite, a list on PostgreSQL)."""
    return [int(s) for s in (orjson.loads(seqs) if isinstance(seqs, str | bytes) else seqs)]


def _encode(conn: Connection, seqs: list[int]) -> Any:
    return seqs if conn.dialect == "postgresql" else orjson.dumps(seqs).decode()


def _value(ev: Any, column: str) -> Any:
    """What ``column`` of ``KEYED_COLUMNS`` (a column, or the name expression) is for ``ev``."""
    if column == NAME:
        return ev.event if ev.event is not None else ev.vendor_event
    return getattr(ev, column)


def event_keys(events: Iterable[Any]) -> set[int]:
    """Every key hash these events (``StoredEvent``-like objects) are indexed under."""
    return {
        key_hash(kind, value)
        for ev in events
        for column, kind in KEYED_COLUMNS.items()
        if (value := _value(ev, column))
    }


def forget(conn: Connection, events: Sequence[Any]) -> int:
    """Remove these events' positions from every posting list holding them (erasure).

    Only the lists of the events' own keys can hold them, so nothing is scanned; a list left
    empty is deleted. Returns the number of positions removed.
    """
    gone = {int(ev.seq) for ev in events}
    keys = sorted(event_keys(events))
    removed = 0
    for part in chunks(keys, 500):
        rows = conn.execute(
            f"SELECT k, first_seq, seqs FROM event_index WHERE {where_in('k', part)}", part
        ).fetchall()
        for k, first, seqs in rows:
            old = decode(seqs)
            keep = [s for s in old if s not in gone]
            if len(keep) == len(old):
                continue
            removed += len(old) - len(keep)
            conn.execute("DELETE FROM event_index WHERE k = ? AND first_seq = ?", (k, first))
            if keep:
                conn.execute(
                    "INSERT INTO event_index (k, first_seq, seqs) VALUES (?, ?, ?)",
                    (k, keep[0], _encode(conn, keep)),
                )
    return removed


def pairs(conn: Connection) -> list[tuple[int, int]]:
    """Every ``(key, position)`` indexed, sorted, whatever the windows were: checks and tests."""
    rows = conn.execute("SELECT k, seqs FROM event_index").fetchall()
    return sorted((int(k), s) for k, seqs in rows for s in decode(seqs))


def keyed(conn: Connection, column: str, value: str) -> tuple[str, list[Any]]:
    """A ``seq IN (...)`` clause of the positions whose ``column`` (a key of
    ``event_index.KEYED_COLUMNS``) may equal ``value``: indexed ones plus the unindexed tail.
    Candidates only: keep the exact condition next to it (hashes can collide)."""
    clause = (
        f"seq IN ({positions_sql(conn, 'k = ?')} UNION ALL SELECT seq FROM events WHERE seq > ?)"
    )
    return clause, [key_hash(KEYED_COLUMNS[column], value), indexed_upto(conn)]
