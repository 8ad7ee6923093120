"""Reads of the log for features (destinations, goals, audiences, metrics): one place for
their SQL over ``events``, with the columns of the model (``model.LOG_COLUMNS``).

Bulk reads (export) come back as Arrow columns (``arrow_between``, ``raw_of_kind``), never as
one Python object per row.

Lookups by a keyed value (user, contact, message, campaign, an event's name) go through
``event_index`` for the part of the log it covers and scan only the tail it has not indexed
yet, so none of them reads the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from engagehub.model import StoredEvent
from engagehub.storage import arrow
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.event_index import NAME, keyed


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
    sql = f"SELECT {columns} FROM events WHERE seq > ? AND seq <= ? AND ({where}) ORDER BY seq"
    pieces = max(1, min(pieces, upto - after))
    bounds = [after + (upto - after) * i // pieces for i in range(pieces + 1)]
    params_of = [[bounds[i], bounds[i + 1], *params] for i in range(pieces)]
    return pa.concat_tables(arrow.read_tables(conn, sql, params_of, schema))


RAW_SCHEMA = pa.schema([("seq", pa.int64()), ("dedup_key", pa.string()), ("raw", pa.string())])
"""The columns ``raw_of_kind`` returns."""


def raw_of_kind(conn: Connection, kind: str, after: int, upto: int) -> pa.Table:
    """``seq, dedup_key, raw`` of the events in ``after < seq <= upto`` from sources of ``kind``
    (e.g. Braze's own records for the Currents layout), in log order."""
    return arrow_between(
        conn,
        "seq, dedup_key, raw",
        RAW_SCHEMA,
        after,
        upto,
        "source_id IN (SELECT id FROM sources WHERE kind = ?)",
        [kind],
    )
