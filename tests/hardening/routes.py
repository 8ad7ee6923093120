"""Every route of the app, with the way a legitimate client authenticates to it.

A route is public only when it is listed here on purpose; any other route must demand the admin
token. Routes added by later features are picked up from ``app.routes`` automatically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from engagehub.security.route_table import flat_routes

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
    # The dashboard's sign-in page and its static files (scripts, styles, the chart library).
    "/login",
    "/static/{name}",
    # A recipient's own unsubscribe and preference pages: the signed token is the credential.
    "/unsubscribe/{token}",
    "/preferences/{token}",
    # A double opt-in confirmation link: the signed, expiring token is the credential.
    "/confirm/{token}",
    # Our own tracked links' redirect: only URLs we signed, the signature is the credential.
    "/c/{token}",
    # The public double opt-in form: anyone may ask; only the emailed link subscribes.
    "/subscribe",
}
# Public pages other sites may show in a frame (CSP frame-ancestors from a setting).
EMBEDDABLE = {"/subscribe"}
# Dashboard pages: a browser session cookie (from /login with the admin token), not a bearer
# token; without one they send the browser to /login (see test_dashboard_pages_need_a_session).
DASHBOARD_MODULE = "engagehub.web."  # routes.py and one module per page group
# Ingest routes: authenticated by write keys, vendor signatures or bearer secrets instead.
INGEST_PREFIXES = ("/v1/", "/crossengage/", "/webhooks/")
# Ingest routes that need no write key on purpose: analytics.js's own usage counters (accepted
# unread, nothing stored) and its settings document (404 for a key no source has).
INGEST_OPEN = {"/v1/m", "/v1/projects/{write_key}/settings"}


def concrete(path: str) -> str:
    """A path template with every ``{param}`` filled by a harmless value."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def routes(app: Any, dashboard: bool | None = None) -> Iterator[tuple[str, str]]:
    """(method, path template) of every HTTP route; ``dashboard`` keeps only (or drops) the
    dashboard's pages."""
    for route in flat_routes(app):
        endpoint = getattr(route.dependant, "call", None)
        is_page = getattr(endpoint, "__module__", "").startswith(DASHBOARD_MODULE)
        if dashboard is not None and is_page != dashboard:
            continue
        for method in sorted(route.methods):
            if method != "HEAD":
                yield method, route.path


def management_routes(app: Any) -> list[tuple[str, str]]:
    """Every route that must demand the admin token."""
    return [
        (m, p)
        for m, p in routes(app, dashboard=False)
        if p not in PUBLIC and not p.startswith(INGEST_PREFIXES)
    ]


def dashboard_pages(app: Any) -> list[tuple[str, str]]:
    """Every dashboard route that must demand a signed-in session."""
    return [(m, p) for m, p in routes(app, dashboard=True) if p not in PUBLIC]
