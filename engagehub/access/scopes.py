"""Which scope a management call needs, decided in one place for every route.

Reads (GET, HEAD, OPTIONS) need ``read``; every other method needs ``write``; the paths below
(token management, erasure and its jobs, the audit log) need ``admin`` whatever the method.
"""

from __future__ import annotations

from engagehub.access.tokens import Principal

READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
ADMIN_PATHS = ("/api/tokens", "/api/people/erase", "/api/audit")
"""Prefixes only admin tokens reach (``/api/people/erase`` covers ``/api/people/erasures``)."""


def needed(method: str, path: str) -> str:
    """The scope a call with this method and path needs."""
    if path.startswith(ADMIN_PATHS):
        return "admin"
    return "read" if method.upper() in READ_METHODS else "write"


def enforce(principal: Principal, method: str, path: str) -> None:
    """403 unless the principal's scope covers the call."""
    principal.require(needed(method, path), f"{method} {path}")
