"""Every HTTP route of the app as (path, methods, dependencies), whatever FastAPI nests inside.

Recent FastAPI keeps included routers as lazy branches in ``app.routes``; this flattens both
the old and the new layout, so checks over "every route" really see every route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route: its path template, HTTP methods and FastAPI dependency tree (if any)."""

    path: str
    methods: frozenset[str]
    dependant: Any


def flat_routes(app: Any) -> list[RouteInfo]:
    """Every route reachable in ``app``, included routers expanded."""
    found: list[RouteInfo] = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            found.append(_info(route, getattr(route, "path", "")))
            continue
        for ctx in contexts():
            original = ctx.original_route
            dependant = getattr(ctx, "dependant", None) or getattr(original, "dependant", None)
            methods = frozenset(ctx.methods or getattr(original, "methods", None) or ())
            found.append(RouteInfo(ctx.path_format or ctx.path, methods, dependant))
    return found


def _info(route: Any, path: str) -> RouteInfo:
    methods = frozenset(getattr(route, "methods", None) or ())
    return RouteInfo(path, methods, getattr(route, "dependant", None))


def depends_on(dependant: Any, fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is anywhere in a route's dependency tree."""
    if dependant is None:
        return False
    return any(d.call is fn or depends_on(d, fn) for d in dependant.dependencies)
