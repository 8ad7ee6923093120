"""The web dashboard: server-rendered pages over the analytics, profiles and consent stores.

Chart.js 4.6.1 (MIT License, https://www.chartjs.org) is vendored as ``static/chart.umd.js``,
taken unchanged from the npm package ``chart.js@4.6.1`` (``dist/chart.umd.js``).
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every dashboard page's router; one module per page (add a new page's module here)."""
    from engagehub.web import (
        audit_log,
        campaigns,
        consent,
        destinations,
        live,
        login,
        messaging,
        people,
        sources,
        suppressions,
        system,
    )

    return [
        login.router,
        campaigns.router,
        people.router,
        live.router,
        audit_log.router,
        sources.router,
        consent.router,
        destinations.router,
        messaging.router,
        suppressions.router,
        system.router,
    ]
