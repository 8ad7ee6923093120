"""Destination rows, their cursor and in-flight batch, dead letters, and replay."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from engagehub.destinations import patterns
from engagehub.errors import ConflictError, NotFound, PayloadError
from engagehub.model import StoredEvent
from engagehub.storage import events as log
from engagehub.storage import followers, logread
from engagehub.storage.base import Connection
from engagehub.timeutil import TimestampError, now_ms, parse_ts

KINDS = ("webhook", "segment", "nats")
BATCH_NAMESPACE = uuid.UUID("0b7a8f5e-2d7c-4c59-9a0e-1f4f7f0d6a40")
_COLUMNS = (
    "name, kind, url, secret, subject, events, batch_size, disabled, cursor, inflight_upto, "
    "attempts, next_attempt_at, delivered, failures, dead, last_error, last_error_at, "
    "last_success_at, created_at"
)


@dataclass(slots=True)
class Destination:
    """One destination row."""

    name: str
    kind: str
    url: str
    secret: str | None
    subject: str | None
    events: str | None
    batch_size: int
    disabled: bool
    cursor: int
    inflight_upto: int | None
    attempts: int
    next_attempt_at: int
    delivered: int
    failures: int
    dead: int
    last_error: str | None
    last_error_at: int | None
    last_success_at: int | None
    created_at: int


def batch_id(name: str, after: int, upto: int) -> str:
    """Stable idempotency id of the batch covering ``after < seq <= upto`` for a destination."""
    return str(uuid.uuid5(BATCH_NAMESPACE, f"{name}:{after}:{upto}"))


def create(
    conn: Connection,
    name: str,
    kind: str,
    url: str,
    secret: str | None = None,
    subject: str | None = None,
    events: str | None = None,
    batch_size: int = 100,
    start: int | None = None,
) -> Destination:
    """Add a destination; it starts at the log head unless ``start`` says otherwise."""
    if kind not in KINDS:
        raise PayloadError(
            f"unknown destination kind {kind!r}; expected one of {', '.join(KINDS)}",
            field="kind",
            value=kind,
        )
    if not 1 <= batch_size <= 10_000:
        raise PayloadError(
            f"batch size {batch_size} out of range 1..10000", field="batch", value=batch_size
        )
    if kind in ("webhook", "segment") and not secret:
        raise PayloadError(f"a {kind} destination needs --secret", field="secret")
    if kind == "nats" and not subject:
        raise PayloadError("a nats destination needs --subject", field="subject")
    patterns.split(events)
    with conn.transaction():
        if conn.scalar("SELECT 1 FROM destinations WHERE name = ?", (name,)):
            raise ConflictError(f"destination {name!r} already exists", name=name)
        cursor = log.head(conn) if start is None else start
        conn.execute(
            "INSERT INTO destinations (name, kind, url, secret, subject, events, batch_size, "
            "cursor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, kind, url, secret, subject, events, batch_size, cursor, now_ms()),
        )
        followers.advance(conn, "destination", name, cursor)
    return get(conn, name)


def _from_row(row: dict[str, Any]) -> Destination:
    row["disabled"] = bool(row["disabled"])
    return Destination(**row)


def get(conn: Connection, name: str) -> Destination:
    """One destination, or NotFound naming it."""
    row = conn.one(f"SELECT {_COLUMNS} FROM destinations WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no destination named {name!r}", destination=name)
    return _from_row(row)


def list_all(conn: Connection) -> list[Destination]:
    """Every destination, by name."""
    return [_from_row(r) for r in conn.all(f"SELECT {_COLUMNS} FROM destinations ORDER BY name")]


def delete(conn: Connection, name: str) -> None:
    """Remove a destination and its dead letters."""
    get(conn, name)
    with conn.transaction():
        conn.execute("DELETE FROM dead_letters WHERE destination = ?", (name,))
        conn.execute("DELETE FROM destinations WHERE name = ?", (name,))
        followers.remove(conn, "destination", name)


def claim(conn: Connection, name: str, lease_ms: int) -> bool:
    """Take the delivery lease of a due destination (one process at a time); False if taken."""
    now = now_ms()
    with conn.transaction():
        cur = conn.execute(
            "UPDATE destinations SET lease_until = ? WHERE name = ? AND lease_until < ? "
            "AND next_attempt_at <= ? AND disabled = 0",
            (now + lease_ms, name, now, now),
        )
        return bool(cur.rowcount == 1)


def release(conn: Connection, name: str) -> None:
    """Give the lease back."""
    with conn.transaction():
        conn.execute("UPDATE destinations SET lease_until = 0 WHERE name = ?", (name,))


def due(conn: Connection) -> list[str]:
    """Names of destinations whose retry time has come (lease checked by ``claim``)."""
    now = now_ms()
    rows = conn.execute(
        "SELECT name FROM destinations WHERE disabled = 0 AND next_attempt_at <= ? "
        "AND lease_until < ? ORDER BY name",
        (now, now),
    ).fetchall()
    return [r[0] for r in rows]


def due_work(conn: Connection) -> bool:
    """Whether some due destination has an in-flight batch, queued replays or unread events."""
    head = log.head(conn)
    now = now_ms()
    for row in conn.execute(
        "SELECT name, cursor, inflight_upto FROM destinations WHERE disabled = 0 "
        "AND next_attempt_at <= ?",
        (now,),
    ).fetchall():
        if row[2] is not None or row[1] < head or next_replay(conn, row[0]) is not None:
            return True
    return False


def plan(conn: Connection, dest: Destination) -> int | None:
    """Fix the range of the next batch (``inflight_upto``) and return it; None when caught up."""
    if dest.inflight_upto is not None:
        return dest.inflight_upto
    head = log.head(conn)
    if head <= dest.cursor:
        return None
    where, params = patterns.sql(dest.events)
    seqs = logread.positions(conn, dest.cursor, head, where, params, dest.batch_size)
    upto = seqs[-1] if len(seqs) == dest.batch_size else head
    with conn.transaction():
        conn.execute("UPDATE destinations SET inflight_upto = ? WHERE name = ?", (upto, dest.name))
    return upto


def read_batch(conn: Connection, dest: Destination, after: int, upto: int) -> list[StoredEvent]:
    """The events of a batch range that this destination takes, in log order."""
    where, params = patterns.sql(dest.events)
    found = logread.between(conn, after, upto, where, params)
    return [e for e in found if patterns.matches(dest.events, e.event, e.vendor_event)]


def delivered(conn: Connection, name: str, upto: int, count: int) -> None:
    """The in-flight batch was accepted: move the cursor past it."""
    with conn.transaction():
        moved = conn.execute(
            "UPDATE destinations SET cursor = ?, inflight_upto = NULL, attempts = 0, "
            "next_attempt_at = 0, delivered = delivered + ?, last_success_at = ? "
            "WHERE name = ? AND inflight_upto = ?",
            (upto, count, now_ms(), name, upto),
        ).rowcount
        if moved:
            followers.advance(conn, "destination", name, upto)


def failed(conn: Connection, name: str, error: str, retry_in_ms: int) -> None:
    """A transient failure: count it and schedule the retry of the same batch."""
    now = now_ms()
    with conn.transaction():
        conn.execute(
            "UPDATE destinations SET attempts = attempts + 1, failures = failures + 1, "
            "next_attempt_at = ?, last_error = ?, last_error_at = ? WHERE name = ?",
            (now + retry_in_ms, error[:2000], now, name),
        )


def dead_letter(
    conn: Connection, dest: Destination, after: int, upto: int, count: int, error: str
) -> None:
    """Give up on a batch: record its range and why, and move the cursor past it."""
    now = now_ms()
    with conn.transaction():
        conn.execute(
            "INSERT INTO dead_letters (destination, batch_id, after_seq, upto_seq, events, "
            "error, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'dead', ?, ?)",
            (
                dest.name,
                batch_id(dest.name, after, upto),
                after,
                upto,
                count,
                error[:2000],
                now,
                now,
            ),
        )
        conn.execute(
            "UPDATE destinations SET cursor = ?, inflight_upto = NULL, attempts = 0, "
            "next_attempt_at = 0, failures = failures + 1, dead = dead + ?, last_error = ?, "
            "last_error_at = ? WHERE name = ?",
            (upto, count, error[:2000], now, dest.name),
        )
        followers.advance(conn, "destination", dest.name, upto)


def dead_letters(conn: Connection, name: str, status: str | None = None) -> list[dict[str, Any]]:
    """Dead letters of a destination, oldest first."""
    sql = (
        "SELECT id, batch_id, after_seq, upto_seq, events, error, status, created_at, updated_at "
        "FROM dead_letters WHERE destination = ?"
    )
    params: list[Any] = [name]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return conn.all(sql + " ORDER BY id", params)


def next_replay(conn: Connection, name: str) -> dict[str, Any] | None:
    """The oldest dead letter queued for replay."""
    rows = dead_letters(conn, name, "replay")
    return rows[0] if rows else None


def mark_letter(conn: Connection, letter_id: int, status: str, error: str | None = None) -> None:
    """Record the outcome of a dead-letter replay (``replayed``, or back to ``dead``)."""
    with conn.transaction():
        conn.execute(
            "UPDATE dead_letters SET status = ?, error = COALESCE(?, error), updated_at = ? "
            "WHERE id = ?",
            (status, error, now_ms(), letter_id),
        )


def replay(
    conn: Connection, name: str, from_ms: int | None = None, dead_letters_only: bool = False
) -> dict[str, Any]:
    """Queue dead letters again, or rewind the cursor to events received at/after ``from_ms``."""
    dest = get(conn, name)
    with conn.transaction():
        if dead_letters_only:
            cur = conn.execute(
                "UPDATE dead_letters SET status = 'replay', updated_at = ? "
                "WHERE destination = ? AND status = 'dead'",
                (now_ms(), name),
            )
            conn.execute("UPDATE destinations SET next_attempt_at = 0 WHERE name = ?", (name,))
            return {"destination": name, "dead_letters": int(cur.rowcount)}
        cursor = 0
        if from_ms is not None:
            cursor = logread.last_received_before(conn, from_ms)
        conn.execute(
            "UPDATE destinations SET cursor = ?, inflight_upto = NULL, attempts = 0, "
            "next_attempt_at = 0 WHERE name = ?",
            (cursor, name),
        )
        followers.advance(conn, "destination", name, cursor)
    return {"destination": name, "cursor": cursor, "previous_cursor": dest.cursor}


def parse_from(value: str | int | None) -> int | None:
    """``--from`` / ``from`` as UTC ms; a clear error naming the value when it is not a time."""
    if value is None:
        return None
    try:
        return parse_ts(value)
    except TimestampError as exc:
        raise PayloadError(f"--from: {exc}", field="from", value=value) from None


def set_paused(conn: Connection, name: str, paused: bool) -> Destination:
    """Pause (no delivery, the cursor waits) or resume (deliver now) a destination."""
    get(conn, name)
    with conn.transaction():
        conn.execute(
            "UPDATE destinations SET disabled = ?, next_attempt_at = 0 WHERE name = ?",
            (1 if paused else 0, name),
        )
    return get(conn, name)


def replay_letter(conn: Connection, name: str, letter_id: int) -> dict[str, Any]:
    """Queue one dead letter again; NotFound unless it is a dead letter of this destination."""
    get(conn, name)
    with conn.transaction():
        cur = conn.execute(
            "UPDATE dead_letters SET status = 'replay', updated_at = ? "
            "WHERE id = ? AND destination = ? AND status = 'dead'",
            (now_ms(), letter_id, name),
        )
        if cur.rowcount != 1:
            raise NotFound(
                f"destination {name!r} has no dead letter {letter_id} waiting",
                destination=name,
                dead_letter=letter_id,
            )
        conn.execute("UPDATE destinations SET next_attempt_at = 0 WHERE name = ?", (name,))
    return {"destination": name, "dead_letters": 1}


def export_targets(conn: Connection) -> list[dict[str, Any]]:
    """Export targets with their position in the log, files and events written, last run."""
    return conn.all(
        "SELECT name, seq, pending_upto, files, events, updated_at FROM export_targets "
        "ORDER BY name"
    )
