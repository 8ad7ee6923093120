"""Conversion goals: a campaign's goal event, an optional filter and a window after delivery.

A message converts when its recipient performs a goal event within the window after delivery
(after send when no delivery receipt came); each message converts at most once, at its
earliest qualifying event. Goal events are kept (``analytics_goal_events``) so that a late
delivery receipt or a late goal event settles to the same answer as in-order arrival. Vendor
reported conversions (Braze Campaign/Canvas Conversion) are goal 0 of their campaign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from engagehub.analytics import expr
from engagehub.errors import NotFound, PayloadError
from engagehub.model import StoredEvent
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

VENDOR_GOAL = 0
VENDOR_CONVERSIONS = frozenset(("Campaign Converted", "Journey Converted"))
_DURATION = re.compile(r"^\s*(\d{1,15})\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
MAX_WITHIN_MS = 3650 * 86_400_000  # ten years: any real attribution window fits


@dataclass(frozen=True, slots=True)
class Goal:
    """One conversion goal of a campaign."""

    id: int
    campaign_id: str
    event: str
    where: str | None
    within_ms: int
    created_at: int

    def public(self) -> dict[str, Any]:
        """JSON shape of the goals API."""
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "event": self.event,
            "where": self.where,
            "within_ms": self.within_ms,
            "within": format_duration(self.within_ms),
            "created_at": self.created_at,
        }


def parse_duration(text: str) -> int:
    """``72h``, ``3d``, ``30m``... as milliseconds; errors name the value."""
    m = _DURATION.match(text or "")
    if not m or int(m.group(1)) <= 0:
        raise PayloadError(
            f"invalid duration {text!r}: use a positive number and a unit (ms, s, m, h, d, w)",
            field="within",
            value=text,
        )
    ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if ms > MAX_WITHIN_MS:
        raise PayloadError(
            f"duration {text!r} is longer than the limit of {MAX_WITHIN_MS // _UNIT_MS['d']}d",
            field="within",
            value=text,
            limit=format_duration(MAX_WITHIN_MS),
        )
    return ms


def format_duration(ms: int) -> str:
    """A window as text in hours when whole (``72h``), else minutes, seconds or ms."""
    for unit in ("h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def load(conn: Connection, campaign_id: str | None = None) -> list[Goal]:
    """Every goal (of one campaign: a stats answer should not read every campaign's)."""
    where, params = (
        ("WHERE campaign_id = ? ", [campaign_id]) if campaign_id is not None else ("", [])
    )
    return [
        Goal(*row)
        for row in conn.execute(
            "SELECT id, campaign_id, event, where_expr, within_ms, created_at "
            f"FROM analytics_goals {where}ORDER BY id",
            params,
        ).fetchall()
    ]


def get(conn: Connection, goal_id: int) -> Goal:
    """One goal; NotFound names the id."""
    for goal in load(conn):
        if goal.id == goal_id:
            return goal
    raise NotFound(f"no goal {goal_id}", goal_id=goal_id)


def validate(campaign_id: str, event: str, where: str | None, within: str) -> int:
    """Check a goal definition; returns the window in ms."""
    if not campaign_id or not campaign_id.strip():
        raise PayloadError("campaign must not be empty", field="campaign", value=campaign_id)
    if not event or not event.strip():
        raise PayloadError("event must not be empty", field="event", value=event)
    if where:
        expr.parse(where)
    return parse_duration(within)


def insert(
    conn: Connection,
    campaign_id: str,
    event: str,
    where: str | None,
    within_ms: int,
    goal_id: int | None = None,
) -> int:
    """Store a goal (under ``goal_id`` when an edit keeps it); returns its id."""
    if goal_id is not None:
        conn.execute(
            "INSERT INTO analytics_goals (id, campaign_id, event, where_expr, within_ms, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (goal_id, campaign_id, event, where or None, within_ms, now_ms()),
        )
        return goal_id
    return int(
        conn.scalar(
            "INSERT INTO analytics_goals (campaign_id, event, where_expr, within_ms, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (campaign_id, event, where or None, within_ms, now_ms()),
        )
    )


class Matcher:
    """Which log events are goal events (compiled once per processor batch)."""

    def __init__(self, goals: list[Goal]) -> None:
        self.by_event: dict[str, list[tuple[Goal, expr.Expr | None]]] = {}
        for goal in goals:
            compiled = expr.parse(goal.where) if goal.where else None
            self.by_event.setdefault(goal.event, []).append((goal, compiled))
        self.windows = {g.id: g.within_ms for g in goals}
        self.campaigns = {g.campaign_id for g in goals}

    def rows(self, ev: StoredEvent) -> list[tuple[Any, ...]]:
        """``analytics_goal_events`` rows for this event (none when it is no goal event)."""
        out: list[tuple[Any, ...]] = []
        if ev.event in VENDOR_CONVERSIONS and ev.campaign_id:
            out.append(
                (
                    VENDOR_GOAL,
                    ev.seq,
                    ev.campaign_id,
                    ev.user_id,
                    ev.contact,
                    ev.message_id,
                    ev.event_time,
                )
            )
        names = {n for n in (ev.event, ev.vendor_event) if n}
        seen: set[int] = set()
        for name in names:
            for goal, compiled in self.by_event.get(name, ()):
                if goal.id in seen or not (ev.user_id or ev.contact):
                    continue
                if compiled is None or compiled.matches(ev.properties, _traits(ev)):
                    seen.add(goal.id)
                    out.append(
                        (
                            goal.id,
                            ev.seq,
                            goal.campaign_id,
                            ev.user_id,
                            ev.contact,
                            None,
                            ev.event_time,
                        )
                    )
        return out


@lru_cache(maxsize=8)
def matcher(goals: tuple[Goal, ...]) -> Matcher:
    """The ``Matcher`` of these goals, compiled once while they stay the same (a round during
    ingest is small: parsing every goal's ``--where`` each round cost more than matching)."""
    return Matcher(list(goals))


def _traits(ev: StoredEvent) -> dict[str, Any]:
    """Traits sent along with the event (Segment ``context.traits``), if any."""
    if not ev.raw or "traits" not in ev.raw:
        return {}
    try:
        doc = orjson.loads(ev.raw)
    except orjson.JSONDecodeError:
        return {}
    context = doc.get("context") if isinstance(doc, dict) else None
    traits = context.get("traits") if isinstance(context, dict) else None
    return traits if isinstance(traits, dict) else {}


def store_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Keep goal events (re-applying a window inserts nothing twice)."""
    conn.executemany(
        "INSERT INTO analytics_goal_events (goal_id, seq, campaign_id, user_id, contact, "
        "message_id, event_time) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (goal_id, seq) DO NOTHING",
        rows,
    )
