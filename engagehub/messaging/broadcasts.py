"""Broadcasts: one template to an audience, rate limited, pausable, exactly once per recipient.

Starting a broadcast writes one ``message_sends`` row per recipient (``UNIQUE(broadcast_id,
contact)``, id ``uuid5(broadcast, contact)``) and the "Audience Entered" events in the same
transaction; the messaging service then sends them at the broadcast's rate. Pausing stops
claiming; rows in flight finish. A killed process leaves its rows leased and they are resumed
(or, past the SMTP point of no return, settled) after the lease, never sent twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from pydantic import BaseModel, Field

from engagehub.consent.store import builtin_source_id
from engagehub.errors import ConflictError, EngagehubError, NotFound, PayloadError
from engagehub.messaging import audiences, templates
from engagehub.messaging.pacing import reasons
from engagehub.model import IncomingEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms, parse_param

_log = logging.getLogger(__name__)
_STARTABLE = ("draft", "scheduled")
NS = uuid.UUID("9b0f4c1e-5d57-4c55-9a41-2f6c8e1d7a30")
_CHUNK = 5000


class BroadcastIn(BaseModel):
    """A broadcast to create."""

    name: str = Field(pattern=templates.NAME_PATTERN)
    template: str
    audience: str
    rate_per_second: float = Field(default=100.0, gt=0, le=100_000)
    frequency_cap: int | None = Field(default=None, ge=0, le=1_000_000)
    """Overrides the global cap for this broadcast's messages (0: no cap); None keeps it."""
    frequency_window_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    """Window of this broadcast's cap in hours; None keeps the global window."""
    start_at: str | None = Field(default=None, max_length=64)
    """ISO 8601 (UTC when no offset) or epoch: create it scheduled to start by itself then."""


def create(conn: Connection, b: BroadcastIn) -> dict[str, Any]:
    """A draft broadcast (template and audience must exist and share a channel)."""
    tpl = templates.load(conn, b.template)
    aud = audiences.load(conn, b.audience)
    if tpl.channel != aud.channel:
        raise PayloadError(
            f"template {tpl.name!r} is {tpl.channel} but audience {aud.name!r} is {aud.channel}",
            template=tpl.channel,
            audience=aud.channel,
        )
    at = parse_param(b.start_at, "start_at")
    with conn.transaction():
        if conn.scalar("SELECT 1 FROM broadcasts WHERE name = ?", (b.name,)):
            raise ConflictError(f"a broadcast named {b.name!r} exists", broadcast=b.name)
        bid = str(uuid.uuid5(NS, b.name))
        conn.execute(
            "INSERT INTO broadcasts (id, name, template, audience, state, rate_per_second, "
            "created_at, frequency_cap, frequency_window_hours, scheduled_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                bid,
                b.name,
                b.template,
                b.audience,
                "draft" if at is None else "scheduled",
                b.rate_per_second,
                now_ms(),
                b.frequency_cap,
                b.frequency_window_hours,
                at,
            ),
        )
    return status(conn, b.name)


def _row(conn: Connection, name: str) -> dict[str, Any]:
    row = conn.one("SELECT * FROM broadcasts WHERE name = ? OR id = ?", (name, name))
    if row is None:
        raise NotFound(f"no broadcast named {name!r}", broadcast=name)
    return row


def _entered(
    bid: str, broadcast: str, aud: audiences.AudienceIn, contact: str, now: int
) -> IncomingEvent:
    """The "Audience Entered" event of one recipient (deduplicated per broadcast)."""
    return IncomingEvent(
        dedup_key=f"aud:{bid}:{contact}",
        event_time=now,
        raw=orjson.dumps({"audience": aud.name, "broadcast": broadcast}).decode(),
        vendor_event="Audience Entered",
        event="Audience Entered",
        channel="audience",
        contact=contact,
        campaign_id=bid,
        properties={
            "audience_key": aud.name,
            "broadcast_id": bid,
            "email" if aud.channel == "email" else "phone": contact,
        },
    )


def start(conn: Connection, name: str) -> dict[str, Any]:
    """Snapshot the audience into recipient rows and start sending (a draft or scheduled one)."""
    row = _row(conn, name)
    if row["state"] not in _STARTABLE:
        raise ConflictError(
            f"broadcast {name!r} is {row['state']}; only a draft or a scheduled one can start",
            state=row["state"],
        )
    tpl = templates.load(conn, row["template"])
    aud = audiences.load(conn, row["audience"])
    contacts = audiences.members(conn, aud)
    now = now_ms()
    bid = row["id"]
    with conn.transaction():
        state = conn.scalar("SELECT state FROM broadcasts WHERE id = ?", (bid,))
        if state not in _STARTABLE:
            raise ConflictError(f"broadcast {name!r} already started", state=state)
        builtin = builtin_source_id(conn)
        for start_at in range(0, len(contacts), _CHUNK):
            part = contacts[start_at : start_at + _CHUNK]
            conn.executemany(
                "INSERT INTO message_sends (id, template, channel, contact, broadcast_id, state, "
                "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, "
                "?, ?) ON CONFLICT DO NOTHING",
                [
                    (
                        str(uuid.uuid5(uuid.UUID(bid), c)),
                        tpl.name,
                        tpl.channel,
                        c,
                        bid,
                        now,
                        now,
                        now,
                    )
                    for c in part
                ],
            )
            entered = [_entered(bid, row["name"], aud, c, now) for c in part]
            log.append(conn, [log.Batch(builtin, now, entered)])
        conn.execute(
            "UPDATE broadcasts SET state = ?, recipients = ?, started_at = ? WHERE id = ?",
            ("running" if contacts else "done", len(contacts), now, bid),
        )
    return status(conn, name)


def schedule(conn: Connection, name: str, at: str | None) -> dict[str, Any]:
    """Schedule a draft (or move a scheduled one) to start at ``at``; None makes it a draft."""
    row = _row(conn, name)
    when = parse_param(at, "at")
    with conn.transaction():
        changed = conn.execute(
            "UPDATE broadcasts SET state = ?, scheduled_at = ? WHERE id = ? AND state IN "
            "('draft', 'scheduled')",
            ("draft" if when is None else "scheduled", when, row["id"]),
        ).rowcount
    if not changed:
        raise ConflictError(
            f"broadcast {name!r} is {row['state']}; only a draft or a scheduled one can be "
            "scheduled",
            state=row["state"],
        )
    return status(conn, name)


def start_due(conn: Connection, now: int) -> list[str]:
    """Start every scheduled broadcast whose time has come (another worker may win a race).

    One that cannot start (its template or audience was deleted) goes back to draft, keeping
    its time, so it is not retried every tick; starting it by hand names the problem.
    """
    started = []
    for r in conn.all(
        "SELECT id, name FROM broadcasts WHERE state = 'scheduled' AND scheduled_at <= ? "
        "ORDER BY scheduled_at, name",
        (now,),
    ):
        try:
            start(conn, r["name"])
        except ConflictError:
            continue
        except EngagehubError as exc:
            _log.warning("scheduled broadcast %r cannot start: %s", r["name"], exc.message)
            with conn.transaction():
                conn.execute(
                    "UPDATE broadcasts SET state = 'draft' WHERE id = ? AND state = 'scheduled'",
                    (r["id"],),
                )
            continue
        started.append(str(r["name"]))
    return started


def set_state(conn: Connection, name: str, target: str) -> dict[str, Any]:
    """Pause a running broadcast or resume a paused one."""
    row = _row(conn, name)
    wanted_from = {"paused": "running", "running": "paused"}[target]
    with conn.transaction():
        changed = conn.execute(
            "UPDATE broadcasts SET state = ? WHERE id = ? AND state = ?",
            (target, row["id"], wanted_from),
        ).rowcount
    if not changed:
        raise ConflictError(
            f"broadcast {name!r} is {row['state']}; cannot make it {target}", state=row["state"]
        )
    return status(conn, name)


ACTIONS = ("start", "pause", "resume", "unschedule")


def act(conn: Connection, name: str, action: str) -> dict[str, Any]:
    """One of ``ACTIONS`` (the API's and the dashboard's buttons); errors name the action."""
    if action == "start":
        return start(conn, name)
    if action in ("pause", "resume"):
        return set_state(conn, name, "paused" if action == "pause" else "running")
    if action == "unschedule":
        return schedule(conn, name, None)
    raise NotFound(f"unknown action {action!r}; use {', '.join(ACTIONS)}", action=action)


def running(conn: Connection) -> list[tuple[str, float]]:
    """(id, rate) of running broadcasts."""
    rows = conn.all("SELECT id, rate_per_second FROM broadcasts WHERE state = 'running'")
    return [(r["id"], float(r["rate_per_second"])) for r in rows]


def finish_done(conn: Connection, bid: str) -> bool:
    """Mark a running broadcast done when no recipient is left open."""
    with conn.transaction():
        left = conn.scalar(
            "SELECT 1 FROM message_sends WHERE broadcast_id = ? AND state IN "
            "('pending', 'sending', 'handed') LIMIT 1",
            (bid,),
        )
        if left:
            return False
        conn.execute(
            "UPDATE broadcasts SET state = 'done', finished_at = ? WHERE id = ? "
            "AND state = 'running'",
            (now_ms(), bid),
        )
    return True


def status(conn: Connection, name: str) -> dict[str, Any]:
    """State, counts per recipient state, and progress."""
    row = _row(conn, name)
    counts = {
        r["state"]: int(r["n"])
        for r in conn.all(
            "SELECT state, COUNT(*) AS n FROM message_sends WHERE broadcast_id = ? GROUP BY state",
            (row["id"],),
        )
    }
    waiting = conn.all(
        "SELECT defer_reason, COUNT(*) AS n FROM message_sends WHERE broadcast_id = ? "
        "AND state = 'pending' AND defer_reason IS NOT NULL GROUP BY defer_reason",
        (row["id"],),
    )
    dropped = conn.all(
        "SELECT error, COUNT(*) AS n FROM message_sends WHERE broadcast_id = ? "
        "AND state = 'dropped' GROUP BY error",
        (row["id"],),
    )
    total = int(row["recipients"])
    finished = sum(counts.get(s, 0) for s in ("sent", "dropped", "failed"))
    return {
        "id": row["id"],
        "name": row["name"],
        "template": row["template"],
        "audience": row["audience"],
        "state": row["state"],
        "rate_per_second": row["rate_per_second"],
        "recipients": total,
        "counts": counts,
        "deferred": reasons(waiting, "defer_reason"),
        "dropped": reasons(dropped, "error"),
        "frequency_cap": row["frequency_cap"],
        "frequency_window_hours": row["frequency_window_hours"],
        "progress": round(finished / total, 4) if total else 1.0,
        "created_at": format_ts(row["created_at"]),
        "scheduled_at": format_ts(row["scheduled_at"]),
        "started_at": format_ts(row["started_at"]),
        "finished_at": format_ts(row["finished_at"]),
    }


def list_all(conn: Connection) -> list[dict[str, Any]]:
    """Every broadcast, newest first."""
    rows = conn.all("SELECT name FROM broadcasts ORDER BY created_at DESC, name")
    return [status(conn, r["name"]) for r in rows]
