"""Event name patterns (``"Email *"``, ``"Email *,SMS Delivered"``) as SQL and as a matcher.

A pattern matches canonical names, and the vendor's name of events without one."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from engagehub.errors import PayloadError


def split(pattern: str | None) -> list[str]:
    """Comma-separated globs; empty means every event."""
    if pattern is None:
        return []
    parts = [p.strip() for p in pattern.split(",")]
    if any(not p for p in parts):
        raise PayloadError(f"empty pattern in {pattern!r}", field="events", value=pattern)
    return parts


def _like(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def sql(pattern: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause on ``events`` keeping the events whose name matches (LIKE pre-filter).

    An event's name is its canonical name, else the vendor's (custom and unmapped events);
    without a pattern every event is kept.
    """
    globs = split(pattern)
    if not globs:
        return "1 = 1", []
    one = "(event LIKE ? ESCAPE '\\' OR (event IS NULL AND vendor_event LIKE ? ESCAPE '\\'))"
    return "(" + " OR ".join(one for _ in globs) + ")", [p for g in globs for p in (_like(g),) * 2]


def matches(pattern: str | None, event: str | None, vendor_event: str | None = None) -> bool:
    """Exact, case-sensitive glob match on the event's name (LIKE is case-insensitive on SQLite)."""
    globs = split(pattern)
    if not globs:
        return True
    name = event or vendor_event
    return name is not None and any(fnmatchcase(name, g) for g in globs)
