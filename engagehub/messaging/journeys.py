"""Journeys: trigger event -> wait -> send -> ... with exit on a conversion goal.

Defined in YAML/JSON (``engagehub journeys add FILE``) or ``POST /api/journeys``. The
``journeys`` log processor enters people on the trigger event (or an "Audience Entered" of the
named audience) and exits them on the goal event; each person's position is a ``journey_runs``
row whose ``due_at`` is a durable timer, advanced by the messaging service. Sends get the id
``uuid5(journey, contact, step)``, so a replayed step never queues a second message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel, Field, field_validator, model_validator

from engagehub.consent.store import builtin_source_id
from engagehub.errors import ConflictError, NotFound, PayloadError
from engagehub.messaging import sender, templates
from engagehub.model import IncomingEvent, StoredEvent
from engagehub.processing.window import Window
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import marks
from engagehub.timeutil import format_ts, now_ms

NS = uuid.UUID("3d1b8f0a-27c4-4f7e-b3a9-61d0c2e5f914")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def duration_ms(value: str | float) -> int:
    """``90``, ``"30m"``, ``"2h"``, ``"1d"`` -> milliseconds."""
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"invalid duration {value!r}; use seconds or 30s/15m/2h/1d")
    return int(float(match.group(1)) * _UNITS[match.group(2)] * 1000)


class Step(BaseModel):
    """One step: wait a duration, or send a template."""

    wait: str | float | None = None
    send: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        if (self.wait is None) == (self.send is None):
            raise ValueError("a step is either {wait: DURATION} or {send: TEMPLATE}")
        if self.wait is not None:
            duration_ms(self.wait)
        return self


class Trigger(BaseModel):
    """What enters a person: an event name, or entry into a saved audience."""

    event: str | None = None
    audience: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if (self.event is None) == (self.audience is None):
            raise ValueError("a trigger names either an event or an audience")
        return self


class JourneyIn(BaseModel):
    """A journey definition."""

    name: str = Field(pattern=templates.NAME_PATTERN)
    channel: str = Field(pattern="^(email|sms)$")
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=50)
    goal: str | None = None
    """Conversion event: a person who performs it exits the journey."""

    @field_validator("steps")
    @classmethod
    def _has_send(cls, steps: list[Step]) -> list[Step]:
        if not any(s.send for s in steps):
            raise ValueError("a journey needs at least one send step")
        return steps


def save(conn: Connection, j: JourneyIn) -> dict[str, Any]:
    """Store a journey (its templates must exist and match its channel)."""
    for step in j.steps:
        if step.send:
            tpl = templates.load(conn, step.send)
            if tpl.channel != j.channel:
                raise PayloadError(
                    f"template {tpl.name!r} is {tpl.channel}, journey is {j.channel}",
                    template=tpl.name,
                )
    with conn.transaction():
        if conn.scalar("SELECT 1 FROM journeys WHERE name = ?", (j.name,)):
            raise ConflictError(f"a journey named {j.name!r} exists", journey=j.name)
        conn.execute(
            "INSERT INTO journeys (name, definition, enabled, created_at) VALUES (?, ?, 1, ?)",
            (j.name, j.model_dump_json(), now_ms()),
        )
    return describe(conn, j.name)


def all_journeys(conn: Connection) -> list[JourneyIn]:
    """Enabled journeys."""
    rows = conn.all("SELECT definition FROM journeys WHERE enabled = 1 ORDER BY name")
    return [JourneyIn.model_validate_json(r["definition"]) for r in rows]


def describe(conn: Connection, name: str) -> dict[str, Any]:
    """A journey and how many people are at each state."""
    found = conn.scalar("SELECT definition FROM journeys WHERE name = ?", (name,))
    if found is None:
        raise NotFound(f"no journey named {name!r}", journey=name)
    counts = {
        r["state"]: int(r["n"])
        for r in conn.all(
            "SELECT state, COUNT(*) AS n FROM journey_runs WHERE journey = ? GROUP BY state",
            (name,),
        )
    }
    return {**orjson.loads(found), "runs": counts}


def runs(conn: Connection, name: str) -> list[dict[str, Any]]:
    """People in a journey."""
    rows = conn.all(
        "SELECT contact, step, state, due_at, exit_reason FROM journey_runs WHERE journey = ? "
        "ORDER BY contact",
        (name,),
    )
    return [{**r, "due_at": format_ts(r["due_at"])} for r in rows]


def _contact(ev: StoredEvent, channel: str) -> str | None:
    key = ev.properties.get("email" if channel == "email" else "phone") or ev.contact
    if not isinstance(key, str) or not key:
        return None
    if (channel == "email") != ("@" in key):
        return None
    return key


def _journey_event(name: str, j: JourneyIn, contact: str, ev: StoredEvent) -> IncomingEvent:
    """A journey lifecycle event about ``contact``, caused by log event ``ev``."""
    props = {
        "journey_id": j.name,
        "journey_name": j.name,
        "email" if j.channel == "email" else "phone": contact,
        "derived_from": ev.event_id,
    }
    return IncomingEvent(
        dedup_key=f"journey:{j.name}:{contact}:{name}",
        event_time=ev.event_time,
        raw=orjson.dumps({"journey": j.name, "event": name, "cause": ev.event_id}).decode(),
        vendor_event=name,
        event=name,
        channel="journey",
        contact=contact,
        campaign_id=j.name,
        properties=props,
    )


class JourneyProcessor:
    """Enters people on trigger events and exits them on goal events (idempotent)."""

    name = "journeys"

    def apply_window(self, window: Window) -> None:
        """Only the window's trigger and goal events are read (filtered in SQL)."""
        journeys = all_journeys(window.conn)
        if not journeys:
            return
        names = {n for j in journeys for n in (j.trigger.event, j.goal) if n}
        if any(j.trigger.audience for j in journeys):
            names.add("Audience Entered")
        named = marks(names)
        events = window.events(
            f"type = 'track' AND (event IN ({named}) OR vendor_event IN ({named}))",
            params=[*sorted(names), *sorted(names)],
        )
        if events:
            self.apply(window.conn, events, journeys)

    def apply(
        self,
        conn: Connection,
        events: Sequence[StoredEvent],
        journeys: Sequence[JourneyIn] | None = None,
    ) -> None:
        """Trigger -> insert a run (once per person); goal -> mark converted. Each effect also
        appends "Journey Entered"/"Journey Converted" (deduplicated, so replays add nothing)."""
        journeys = all_journeys(conn) if journeys is None else journeys
        if not journeys:
            return
        derived: list[IncomingEvent] = []
        for ev in events:
            for j in journeys:
                contact = _contact(ev, j.channel)
                if contact is None:
                    continue
                name = ev.event or ev.vendor_event
                if j.goal and name == j.goal:
                    converted = conn.execute(
                        "UPDATE journey_runs SET state = 'converted', exit_reason = 'goal', "
                        "updated_at = ? WHERE journey = ? AND contact = ? AND state = 'active'",
                        (now_ms(), j.name, contact),
                    ).rowcount
                    if converted:
                        derived.append(_journey_event("Journey Converted", j, contact, ev))
                if self._triggers(j, ev, name):
                    entered = conn.execute(
                        "INSERT INTO journey_runs (journey, contact, step, state, due_at, "
                        "context, entered_at, updated_at) VALUES (?, ?, 0, 'active', ?, ?, ?, ?) "
                        "ON CONFLICT (journey, contact) DO NOTHING",
                        (
                            j.name,
                            contact,
                            ev.event_time,
                            orjson.dumps({"event": ev.properties}).decode(),
                            ev.event_time,
                            now_ms(),
                        ),
                    ).rowcount
                    if entered:
                        derived.append(_journey_event("Journey Entered", j, contact, ev))
        if derived:
            log.append(conn, [log.Batch(builtin_source_id(conn), now_ms(), derived)])

    @staticmethod
    def _triggers(j: JourneyIn, ev: StoredEvent, name: str | None) -> bool:
        if j.trigger.event is not None:
            return name == j.trigger.event
        return (
            ev.event == "Audience Entered"
            and ev.properties.get("audience_key") == j.trigger.audience
        )

    def reset(self, conn: Connection) -> None:
        """Runs are live state (messages went out); a reprocess keeps them."""


def tick(conn: Connection, limit: int = 500) -> int:
    """Advance due runs: waits set the next timer, sends queue a message; returns runs moved."""
    now = now_ms()
    due = conn.all(
        "SELECT journey, contact, step, context FROM journey_runs WHERE state = 'active' "
        "AND due_at <= ? ORDER BY due_at LIMIT ?",
        (now, limit),
    )
    if not due:
        return 0
    defs = {j.name: j for j in all_journeys(conn)}
    for run in due:
        j = defs.get(run["journey"])
        with conn.transaction():
            state, step, due_at = "active", int(run["step"]), now
            if j is None:
                state = "exited"
            else:
                while step < len(j.steps):
                    current = j.steps[step]
                    step += 1
                    if current.wait is not None:
                        due_at = now + duration_ms(current.wait)
                        break
                    assert current.send is not None
                    mid = str(uuid.uuid5(NS, f"{j.name}\0{run['contact']}\0{step}"))
                    sender.enqueue(
                        conn,
                        current.send,
                        j.channel,
                        run["contact"],
                        orjson.loads(run["context"]),
                        message_id=mid,
                        journey=j.name,
                    )
                else:
                    state = "completed"
            conn.execute(
                "UPDATE journey_runs SET step = ?, state = ?, due_at = ?, updated_at = ?, "
                "exit_reason = COALESCE(exit_reason, ?) WHERE journey = ? AND contact = ? "
                "AND state = 'active' AND step = ?",
                (
                    step,
                    state,
                    due_at,
                    now,
                    None if state == "active" else state,
                    run["journey"],
                    run["contact"],
                    run["step"],
                ),
            )
    return len(due)
