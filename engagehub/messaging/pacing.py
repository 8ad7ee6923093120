"""Frequency caps and quiet hours: marketing sends that must wait are deferred, never dropped.

A cap allows at most N marketing messages per contact point per channel within a window
(``frequency_cap`` / ``frequency_cap_window_hours``; a broadcast may override both, 0 turning
the cap off for it). Quiet hours (``quiet_hours``, e.g. ``21:00-08:00``) apply in the person's
time zone (trait ``timezone``/``time_zone``, else ``default_timezone``). Transactional
messages (template kind or the send's flag) and test sends are exempt. A deferred row goes
back to ``pending`` with ``next_attempt_at`` at the earliest time it may go and its
``defer_reason``; its attempt is not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engagehub.errors import ConfigError
from engagehub.messaging.sender import Job, Prepared
from engagehub.settings import Settings
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks

HOUR_MS = 3_600_000
TZ_TRAITS = ("timezone", "time_zone", "tz")


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``count`` marketing messages per ``window_ms`` (``count`` 0: no cap)."""

    count: int
    window_ms: int


@functools.cache
def zone(name: str) -> ZoneInfo | None:
    """An IANA time zone, or None for a name that is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def window_of(spec: str) -> tuple[time, time]:
    """``"21:00-08:00"`` -> (start, end); a bad spec is a configuration error naming it."""
    try:
        start, end = (time.fromisoformat(p.strip()) for p in spec.split("-"))
    except ValueError:
        raise ConfigError(
            f"quiet_hours must look like 21:00-08:00, got {spec!r}", setting="quiet_hours"
        ) from None
    return start, end


def quiet_until(now: int, spec: str, tz: ZoneInfo) -> int | None:
    """End of the quiet period ``now`` falls in (UTC ms), or None outside quiet hours."""
    start, end = window_of(spec)
    if start == end:
        return None
    local = datetime.fromtimestamp(now / 1000, UTC).astimezone(tz)
    t = local.time().replace(tzinfo=None)
    day = local.date()
    if start < end:
        if not start <= t < end:
            return None
        resume = datetime.combine(day, end, tz)
    elif t >= start:
        resume = datetime.combine(day + timedelta(days=1), end, tz)
    elif t < end:
        resume = datetime.combine(day, end, tz)
    else:
        return None
    return int(resume.timestamp() * 1000)


def tz_of(job: Job, default: ZoneInfo) -> tuple[ZoneInfo, str]:
    """The person's time zone from their traits, else the default (and its name)."""
    traits = job.context.get("traits") if isinstance(job.context.get("traits"), dict) else None
    for key in TZ_TRAITS:
        value = (traits or job.traits).get(key)
        if isinstance(value, str) and (found := zone(value)) is not None:
            return found, value
    return default, str(default)


def caps_for(conn: Connection, settings: Settings, jobs: Sequence[Job]) -> dict[str | None, Cap]:
    """The cap of each broadcast among ``jobs`` (None: sends of no broadcast)."""
    default = Cap(settings.frequency_cap, int(settings.frequency_cap_window_hours * HOUR_MS))
    caps: dict[str | None, Cap] = {None: default}
    for bid in {j.broadcast_id for j in jobs if j.broadcast_id}:
        row = conn.one(
            "SELECT frequency_cap, frequency_window_hours FROM broadcasts WHERE id = ?", (bid,)
        )
        count = (
            default.count if row is None or row["frequency_cap"] is None else row["frequency_cap"]
        )
        hours = None if row is None else row["frequency_window_hours"]
        caps[bid] = Cap(int(count), int(hours * HOUR_MS) if hours else default.window_ms)
    return caps


def recent_sends(
    conn: Connection, keys: set[tuple[str, str]], since: int
) -> dict[tuple[str, str], list[int]]:
    """Times of marketing messages sent to each contact point since ``since`` (sorted)."""
    out: dict[tuple[str, str], list[int]] = {}
    contacts = sorted({c for c, _ in keys})
    for part in chunks(contacts):
        rows = conn.all(
            "SELECT s.contact, s.channel, s.updated_at FROM message_sends s "
            "JOIN message_templates t ON t.name = s.template "
            f"WHERE s.contact IN ({marks(part)}) "
            "AND s.state IN ('sent', 'handed') AND s.transactional = 0 "
            "AND t.kind = 'marketing' AND s.updated_at > ?",
            [*part, since],
        )
        for r in rows:
            key = (r["contact"], r["channel"])
            if key in keys:
                out.setdefault(key, []).append(int(r["updated_at"]))
    for times in out.values():
        times.sort()
    return out


def check_pacing(
    conn: Connection, settings: Settings, jobs: list[Job], prep: Prepared, now: int
) -> None:
    """Defer marketing jobs in quiet hours or over their cap (``outcome`` "deferred")."""
    todo = [j for j in jobs if not j.outcome and _marketing(j, prep)]
    if not todo:
        return
    if settings.quiet_hours:
        default = zone(settings.default_timezone)
        if default is None:
            raise ConfigError(
                f"default_timezone {settings.default_timezone!r} is not an IANA time zone",
                setting="default_timezone",
            )
        for job in todo:
            tz, name = tz_of(job, default)
            until = quiet_until(now, settings.quiet_hours, tz)
            if until is not None:
                _defer(job, until, f"quiet_hours: {settings.quiet_hours} {name}")
    caps = caps_for(conn, settings, todo)
    capped = [j for j in todo if not j.outcome and caps[j.broadcast_id].count > 0]
    if not capped:
        return
    longest = max(caps[j.broadcast_id].window_ms for j in capped)
    sent = recent_sends(conn, {(j.contact, j.channel) for j in capped}, now - longest)
    for job in capped:
        cap = caps[job.broadcast_id]
        times = [t for t in sent.get((job.contact, job.channel), []) if t > now - cap.window_ms]
        if len(times) >= cap.count:
            until = times[len(times) - cap.count] + cap.window_ms + 1
            hours = cap.window_ms / HOUR_MS
            _defer(job, until, f"frequency_cap: {cap.count} per {hours:g}h")
        else:  # counts for later jobs of this batch to the same contact point
            sent.setdefault((job.contact, job.channel), []).append(now)


def _marketing(job: Job, prep: Prepared) -> bool:
    tpl = prep.templates.get(job.template)
    if job.transactional or job.context.get("test"):
        return False
    return tpl is None or tpl.kind == "marketing"


def _defer(job: Job, until: int, reason: str) -> None:
    job.outcome, job.error, job.defer_until = "deferred", reason, until


def reasons(rows: Sequence[dict[str, Any]], column: str) -> dict[str, int]:
    """Counts per reason code (the text before the first colon)."""
    out: dict[str, int] = {}
    for r in rows:
        code = str(r[column] or "unknown").split(":", 1)[0]
        out[code] = out.get(code, 0) + int(r["n"])
    return out
