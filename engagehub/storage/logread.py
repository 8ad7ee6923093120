"""Reads of the log for features (the events API and CLI, profiles, destinations, goals,
audiences, metrics): one place for their SQL over ``events``, with the columns of the model
(``model.LOG_COLUMNS``). Processors read through their ``Window``; the log's own module
(``storage.events``) appends and reads ranges.

Bulk reads (export) come back as Arrow columns (``arrow_between``, ``raw_of_kind``), never as
one Python object per row.

Lookups by a keyed value (user, contact, message, campaign, an event's name) go through
``event_index`` for the part of the log it covers and scan only the tail it has not indexed
yet, so none of them reads the whole log.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engagehub.errors import PayloadError
from engagehub.model import StoredEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.event_index import NAME, keyed
from engagehub.storage.keyset import page

if TYPE_CHECKING:  # pyarrow (and numpy) load only where bulk reads run: not in every server
    import pyarrow as pa


def between(
    conn: Connection,
    after: int,
    upto: int,
    where: str = "1 = 1",
    params: Sequence[Any] = (),
) -> list[StoredEvent]:
    """Events with ``after < seq <= upto`` matching ``where`` (``?`` bound to ``params``)."""
    rows = conn.execute(
        f"SELECT {log.COLUMNS} FROM events WHERE seq > ? AND seq <= ? AND ({where}) ORDER BY seq",
        [after, upto, *params],
    ).fetchall()
    return [log.from_row(r) for r in rows]


def positions(
    conn: Connection, after: int, upto: int, where: str, params: Sequence[Any], limit: int
) -> list[int]:
    """The first ``limit`` log positions in ``(after, upto]`` matching ``where``."""
    rows = conn.execute(
        f"SELECT seq FROM events WHERE seq > ? AND seq <= ? AND ({where}) ORDER BY seq LIMIT ?",
        [after, upto, *params, limit],
    ).fetchall()
    return [int(r[0]) for r in rows]


def received_at(conn: Connection, seq: int) -> int | None:
    """When the event at ``seq`` was received (None when there is none)."""
    found = conn.scalar("SELECT received_at FROM events WHERE seq = ?", (seq,))
    return int(found) if found is not None else None


def last_received_before(conn: Connection, when_ms: int) -> int:
    """The last log position received before ``when_ms`` (0 when none)."""
    return int(
        conn.scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE received_at < ?", (when_ms,))
        or 0
    )


def performers(conn: Connection, name: str, since: int | None = None) -> list[dict[str, Any]]:
    """``contact`` and ``user_id`` of every event named ``name`` (canonical, else the vendor's
    name), received from event time ``since`` on; read through the name key of event_index."""
    clause, params = keyed(conn, NAME, name)
    where = f"{clause} AND {NAME} = ?"
    params.append(name)
    if since is not None:
        where += " AND event_time >= ?"
        params.append(since)
    return conn.all(f"SELECT DISTINCT contact, user_id FROM events WHERE {where}", params)


def arrow_between(
    conn: Connection,
    columns: str,
    schema: pa.Schema,
    after: int,
    upto: int,
    where: str = "1 = 1",
    params: Sequence[Any] = (),
    pieces: int = 1,
) -> pa.Table:
    """``columns`` of the events with ``after < seq <= upto`` matching ``where``, in log order,
    as one Arrow table of ``schema``.

    ``pieces`` > 1 reads that many consecutive seq ranges at once (``arrow.read_tables``: each
    its own ADBC connection, the drivers outside the GIL), one chunk each, joined without a copy.
    """
    import pyarrow as pa

    from engagehub.storage import arrow

    sql = f"SELECT {columns} FROM events WHERE seq > ? AND seq <= ? AND ({where}) ORDER BY seq"
    pieces = max(1, min(pieces, upto - after))
    bounds = [after + (upto - after) * i // pieces for i in range(pieces + 1)]
    params_of = [[bounds[i], bounds[i + 1], *params] for i in range(pieces)]
    return pa.concat_tables(arrow.read_tables(conn, sql, params_of, schema))


def raw_of_kind(conn: Connection, kind: str, after: int, upto: int) -> pa.Table:
    """``seq, dedup_key, raw`` of the events in ``after < seq <= upto`` from sources of ``kind``
    (e.g. Braze's own records for the Currents layout), in log order."""
    import pyarrow as pa

    return arrow_between(
        conn,
        "seq, dedup_key, raw",
        pa.schema([("seq", pa.int64()), ("dedup_key", pa.string()), ("raw", pa.string())]),
        after,
        upto,
        "source_id IN (SELECT id FROM sources WHERE kind = ?)",
        [kind],
    )


@dataclass(slots=True)
class EventQuery:
    """Filters of ``GET /api/events`` and ``engagehub events tail``."""

    user_id: str | None = None
    event: str | None = None
    channel: str | None = None
    campaign_id: str | None = None
    message_id: str | None = None
    contact: str | None = None
    anonymous_id: str | None = None
    source_id: int | None = None
    since: int | None = None
    until: int | None = None
    unmapped: bool | None = None
    after_seq: int | None = None
    limit: int = 100
    cursor: str | None = None
    ascending: bool = False


def encode_cursor(seq: int, ascending: bool) -> str:
    """Opaque pagination cursor for a log position and direction."""
    return base64.urlsafe_b64encode(f"{'a' if ascending else 'd'}{seq}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, bool]:
    """Inverse of ``encode_cursor``; a bad cursor is a client error naming it."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if text[0] not in "ad":
            raise ValueError(text)
        return int(text[1:]), text[0] == "a"
    except (ValueError, IndexError, UnicodeDecodeError):
        raise PayloadError("invalid cursor", field="cursor", value=cursor) from None


def _index_candidates(conn: Connection, q: EventQuery) -> tuple[str, list[Any]] | None:
    """Restrict to log positions from ``event_index`` plus the tail it has not indexed yet."""
    for column in ("message_id", "user_id", "contact", "anonymous_id", "campaign_id"):
        value = getattr(q, column)
        if value is not None:
            return keyed(conn, column, value)
    return None


def query(conn: Connection, q: EventQuery) -> tuple[list[StoredEvent], str | None]:
    """One page of events matching ``q``, newest first unless ascending; plus the next cursor."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in (
        "user_id",
        "anonymous_id",
        "contact",
        "event",
        "channel",
        "campaign_id",
        "message_id",
        "source_id",
    ):
        value = getattr(q, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    indexed = _index_candidates(conn, q)
    if indexed is not None:
        clauses.append(indexed[0])
        params.extend(indexed[1])
    if q.since is not None:
        clauses.append("event_time >= ?")
        params.append(q.since)
    if q.until is not None:
        clauses.append("event_time < ?")
        params.append(q.until)
    if q.unmapped is True:
        clauses.append("event IS NULL AND type = 'track'")
    elif q.unmapped is False:
        clauses.append("event IS NOT NULL")
    ascending = q.ascending
    if q.cursor:
        position, ascending = decode_cursor(q.cursor)
        clauses.append("seq > ?" if ascending else "seq < ?")
        params.append(position)
    elif q.after_seq is not None:
        ascending = True
        clauses.append("seq > ?")
        params.append(q.after_seq)
    where = " AND ".join(clauses) or "1 = 1"
    order = "ASC" if ascending else "DESC"
    sql = f"SELECT {log.COLUMNS} FROM events WHERE {where} ORDER BY seq {order} LIMIT ?"
    rows, last = page(conn.execute(sql, [*params, q.limit + 1]).fetchall(), q.limit)
    events = [log.from_row(r) for r in rows]
    return events, encode_cursor(events[-1].seq, ascending) if last is not None else None
