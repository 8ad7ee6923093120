"""Event name patterns (``"Email *"``, ``"Email *,SMS Delivered"``) as SQL and as a matcher."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from engagehub.errors import PayloadError


def split(pattern: str | None) -> list[str]:
    """Comma-separated globs; empty means every canonical event."""
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
    """A WHERE clause on ``events`` keeping canonical events that match (LIKE pre-filter)."""
    globs = split(pattern)
    if not globs:
        return "event IS NOT NULL", []
    clause = " OR ".join("event LIKE ? ESCAPE '\\'" for _ in globs)
    return f"event IS NOT NULL AND ({clause})", [_like(g) for g in globs]


def matches(pattern: str | None, event: str | None) -> bool:
    """Exact, case-sensitive glob match (LIKE is case-insensitive on SQLite)."""
    if event is None:
        return False
    globs = split(pattern)
    return not globs or any(fnmatchcase(event, g) for g in globs)
