"""Every route of the app, with the way a legitimate client authenticates to it.

A route is public only when it is listed here on purpose; any other route must demand the admin
token. Routes added by later features are picked up from ``app.routes`` automatically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from engagehub.security.routes import flat_routes

# Unauthenticated on purpose: probes and the API description.
# /metrics is open unless ENGAGEHUB_METRICS_TOKEN is set (tests/ops cover the token).
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
# Ingest routes: authenticated by write keys, vendor signatures or bearer secrets instead.
INGEST_PREFIXES = ("/v1/", "/crossengage/", "/webhooks/")


def concrete(path: str) -> str:
    """A path template with every ``{param}`` filled by a harmless value."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def routes(app: Any) -> Iterator[tuple[str, str]]:
    """(method, path template) of every HTTP route."""
    for route in flat_routes(app):
        for method in sorted(route.methods):
            if method != "HEAD":
                yield method, route.path


def management_routes(app: Any) -> list[tuple[str, str]]:
    """Every route that must demand the admin token."""
    return [(m, p) for m, p in routes(app) if p not in PUBLIC and not p.startswith(INGEST_PREFIXES)]
