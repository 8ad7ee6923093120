"""The event log: append (exactly once per source and dedup key), read by position, query."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from engagehub import safejson
from engagehub.model import LOG_COLUMNS, AppendResult, IncomingEvent, StoredEvent, event_id_for
from engagehub.storage import locks
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in

COLUMNS = ", ".join(LOG_COLUMNS)  # from the model: StoredEvent's fields, in order
_INSERT = (
    "INSERT INTO events (event_id, source_id, dedup_key, type, vendor_event, event, channel, "
    "user_id, anonymous_id, contact, message_id, campaign_id, event_time, received_at, "
    "properties, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source_id, dedup_key) DO NOTHING"
)
# PostgreSQL: appends NOTIFY this channel; `engagehub worker` LISTENs instead of only polling.
LOG_CHANNEL = "engagehub_log"


@dataclass(slots=True)
class Batch:
    """Events of one request, for one source, received at one time."""

    source_id: int
    received_at: int
    events: Sequence[IncomingEvent]
    screened: bool = False
    """The events already passed ``sanity.screen`` (ingest routes): not checked twice."""


def dump_properties(properties: dict[str, Any]) -> str:
    """Canonical JSON of the properties; integers past 64 bits (valid JSON) become strings."""
    return safejson.dumps(properties).decode()


def _row(source_id: int, received_at: int, ev: IncomingEvent) -> tuple[Any, ...]:
    return (
        event_id_for(source_id, ev.dedup_key),
        source_id,
        ev.dedup_key,
        ev.type,
        ev.vendor_event,
        ev.event,
        ev.channel,
        ev.user_id,
        ev.anonymous_id,
        ev.contact,
        ev.message_id,
        ev.campaign_id,
        ev.event_time,
        received_at,
        dump_properties(ev.properties),
        ev.raw,
    )


Rows = list[list[tuple[Any, ...]]]
Screen = Callable[[Connection, Rows], Rows]
_SCREENS: list[Screen] = []


def add_screen(screen: Screen) -> None:
    """Pass the rows of every append through ``screen`` inside its transaction (on PostgreSQL
    again after the append lock). Storage imports no feature: features register here (privacy
    drops erased people's events; ``engagehub/__init__`` imports it in every process)."""
    if screen not in _SCREENS:
        _SCREENS.append(screen)


def screens() -> list[Screen]:
    """The registered screens, in order."""
    return list(_SCREENS)


def _screen(conn: Connection, rows: Rows) -> Rows:
    for screen in _SCREENS:
        rows = screen(conn, rows)
    return rows


_LISTENERS: list[Callable[[], None]] = []


def on_append(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (from any thread) after each commit that appended events; returns a
    function that unregisters it. The server's processors wake this way, whoever appended."""
    _LISTENERS.append(listener)
    return lambda: _LISTENERS.remove(listener) if listener in _LISTENERS else None


def _appended() -> None:
    for listener in list(_LISTENERS):
        listener()


def prepare(batches: Sequence[Batch]) -> Rows:
    """The sanity check and the log rows of ``batches`` (no database): the group-commit writer
    builds them before it takes the write lock, so the lock is held only for the inserts."""
    from engagehub.storage import sanity

    for b in batches:
        if not b.screened:
            sanity.check(b.events)
    return [[_row(b.source_id, b.received_at, ev) for ev in b.events] for b in batches]


def append(
    conn: Connection, batches: Sequence[Batch], prepared: Rows | None = None
) -> list[AppendResult]:
    """Append many requests' events in one transaction (group commit); duplicates are skipped.

    Every append of the code base comes here: each event passes the same sanity check
    (``storage.sanity``; ``prepared`` is ``prepare(batches)`` done earlier), and processors are
    woken once the transaction commits. Only new rows are inserted (keys already in the log are
    looked up first; on SQLite only after an insert met one, ``_optimistic``): per-request
    counts are exact and positions stay dense on both backends.
    """
    rows = prepare(batches) if prepared is None else prepared
    if len(rows) != len(batches):
        raise ValueError(f"{len(rows)} prepared row lists for {len(batches)} batches")
    if _optimistic(conn):
        try:
            with conn.transaction():
                return _append(conn, rows, optimistic=True)
        except _AlreadyLogged:  # rolled back: look the keys up for a while
            _LOOKUP_FIRST[conn] = _LOOKUPS_AFTER_A_DUPLICATE
    with conn.transaction():
        return _append(conn, rows, optimistic=False)


def _append(conn: Connection, rows: Rows, optimistic: bool) -> list[AppendResult]:
    """``append`` inside its transaction; ``optimistic``: insert without looking keys up, and
    raise ``_AlreadyLogged`` when a row was refused (SQLite draws a position for a refused row
    too: the transaction must be rolled back so that the log's positions stay dense)."""
    rows = _screen(conn, rows)  # e.g. erased people's events: acknowledged, not stored
    partitioned = conn.dialect == "postgresql" and _partitioned(conn)
    if partitioned:
        # Claim keys before the lock: event_keys' primary key decides, so only positions,
        # rows and the commit wait for other processes' appends.
        seen = _claim_keys(conn, rows)
    if conn.dialect == "postgresql":
        conn.execute("SELECT pg_advisory_xact_lock(?)", (locks.APPEND,))
        rows = _screen(conn, rows)  # ...and of an erasure committed meanwhile
    if not partitioned:
        seen = set() if optimistic else _existing_keys(conn, rows)
    fresh, counts = _unseen(rows, seen)
    if fresh and partitioned:
        last = _copy_partitioned(conn, fresh)  # the new head: positions are drawn in order
        conn.execute(f"NOTIFY {LOG_CHANNEL}")  # delivered at commit: wakes idle workers
    else:
        if fresh and conn.executemany(_INSERT, fresh) != len(fresh) and optimistic:
            raise _AlreadyLogged
        last = head(conn)
    if fresh:
        conn.after_commit(_appended)
    return [
        AppendResult(inserted=n, duplicates=len(r) - n, head=last)
        for n, r in zip(counts, rows, strict=True)
    ]


_KEYS_PER_LOOKUP = 2000
Fresh = tuple[list[tuple[Any, ...]], list[int]]
"""Rows to insert (new keys, each once) and each request's count of them."""


def _unseen(rows: Rows, seen: set[tuple[int, str]]) -> Fresh:
    """The rows whose key is neither in ``seen`` nor earlier in the group."""
    fresh: list[tuple[Any, ...]] = []
    counts: list[int] = []
    for batch_rows in rows:
        inserted = 0
        for row in batch_rows:
            key = (row[1], row[2])
            if key not in seen:
                seen.add(key)
                fresh.append(row)
                inserted += 1
        counts.append(inserted)
    return fresh, counts


class _AlreadyLogged(Exception):
    """A key of the group is in the log already: roll the optimistic append back."""


_LOOKUPS_AFTER_A_DUPLICATE = 100
_LOOKUP_FIRST: weakref.WeakKeyDictionary[Connection, int] = weakref.WeakKeyDictionary()
"""SQLite connections that met a duplicate lately: groups left that look their keys up first."""


def _optimistic(conn: Connection) -> bool:
    """Whether this append inserts without looking its keys up first: on SQLite, unless the
    connection met a logged key lately (a client sends a key again only when it retries; one
    retrying over and over then costs a lookup per group, not an insert and a rollback)."""
    if conn.dialect != "sqlite":
        return False  # PostgreSQL's sequences are not rolled back: positions would skip
    left = _LOOKUP_FIRST.get(conn, 0)
    if left:
        _LOOKUP_FIRST[conn] = left - 1
    return not left


def _partitioned(conn: Connection) -> bool:
    """Whether this PostgreSQL database has the partitioned log (migration 600); cached once so."""
    from engagehub.storage import partitions

    if conn in _PARTITIONED:
        return True
    if partitions.is_partitioned(conn):
        _PARTITIONED.add(conn)
        return True
    return False


_PARTITIONED: weakref.WeakSet[Connection] = weakref.WeakSet()
_COPY_EVENTS = (
    "COPY events (seq, event_id, source_id, dedup_key, type, vendor_event, event, channel, "
    "user_id, anonymous_id, contact, message_id, campaign_id, event_time, received_at, "
    "properties, raw) FROM STDIN"
)


def _copy_partitioned(conn: Connection, fresh: list[tuple[Any, ...]]) -> int:
    """PostgreSQL, under the append lock: reserve positions and COPY the rows; returns the last."""
    from engagehub.storage import partitions
    from engagehub.storage.postgres import PostgresConnection

    assert isinstance(conn, PostgresConnection)
    partitions.ensure(conn, {row[13] for row in fresh})
    # Reserve a block of positions in one round trip; safe because every append holds the lock.
    last = int(
        conn.scalar("SELECT setval('events_seq', nextval('events_seq') + ? - 1)", (len(fresh),))
    )
    seqs = range(last - len(fresh) + 1, last + 1)
    conn.copy(_COPY_EVENTS, ((seq, *row) for seq, row in zip(seqs, fresh, strict=True)))
    return last


_CLAIM = (
    "INSERT INTO event_keys (source_id, dedup_key) "
    "SELECT s, d FROM unnest(?::integer[], ?::text[]) AS k(s, d) ORDER BY s, d "
    "ON CONFLICT DO NOTHING RETURNING source_id, dedup_key"
)


def _claim_keys(conn: Connection, rows: list[list[tuple[Any, ...]]]) -> set[tuple[int, str]]:
    """PostgreSQL: insert these rows' keys into ``event_keys``; returns the keys already there.

    The primary key is the exactly-once guard across processes: a key another transaction is
    inserting makes this one wait for its outcome (duplicate if it commits, ours if it rolls
    back). Inserting in one sorted order means two appends never wait on each other in a cycle.
    """
    keys = list(dict.fromkeys((row[1], row[2]) for batch_rows in rows for row in batch_rows))
    claimed = {
        (int(s), str(d))
        for s, d in conn.execute(_CLAIM, [[k[0] for k in keys], [k[1] for k in keys]])
    }
    return set(keys) - claimed


def _existing_keys(
    conn: Connection, rows: list[list[tuple[Any, ...]]], table: str = "events"
) -> set[tuple[int, str]]:
    """(source_id, dedup_key) pairs of these rows already in the log, in few statements."""
    by_source: dict[int, list[str]] = {}
    for batch_rows in rows:
        for row in batch_rows:
            by_source.setdefault(row[1], []).append(row[2])
    found: set[tuple[int, str]] = set()
    for source_id, keys in by_source.items():
        if conn.dialect == "postgresql":
            # One array parameter: thousands of placeholders cost more to convert than to run.
            sql = f"SELECT dedup_key FROM {table} WHERE source_id = ? AND dedup_key = ANY(?)"
            found.update((source_id, k) for (k,) in conn.execute(sql, [source_id, keys]))
            continue
        for part in chunks(keys, _KEYS_PER_LOOKUP):
            keys_in = where_in("dedup_key", part)
            sql = f"SELECT dedup_key FROM {table} WHERE source_id = ? AND {keys_in}"
            found.update((source_id, k) for (k,) in conn.execute(sql, [source_id, *part]))
    return found


def head(conn: Connection) -> int:
    """The last log position (0 for an empty log)."""
    return int(conn.scalar("SELECT COALESCE(MAX(seq), 0) FROM events") or 0)


def from_row(row: Sequence[Any]) -> StoredEvent:
    """A log row (in ``COLUMNS`` order, the field order of StoredEvent) as a StoredEvent."""
    props = row[15]
    if isinstance(props, str | bytes):
        props = orjson.loads(props)
    # Positional arguments: processors turn millions of rows into events.
    r = row
    return StoredEvent(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
        r[14], props, r[16]
    )  # fmt: skip


LIGHT_COLUMNS = COLUMNS.replace("properties, raw", "'{}', ''")


def read_range(
    conn: Connection,
    after: int,
    upto: int,
    where: str | None = None,
    limit: int | None = None,
    payload: bool = True,
) -> list[StoredEvent]:
    """Events with ``after < seq <= upto`` (and the optional SQL filter), in log order.

    ``payload=False`` leaves ``properties`` empty and ``raw`` blank (cheaper to read).
    """
    sql = f"SELECT {COLUMNS if payload else LIGHT_COLUMNS} FROM events WHERE seq > ? AND seq <= ?"
    if where:
        sql += f" AND ({where})"
    sql += " ORDER BY seq"
    params: list[Any] = [after, upto]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [from_row(r) for r in conn.execute(sql, params).fetchall()]
