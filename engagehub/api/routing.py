"""What the management API's route modules share, FastAPI-style: the router of a feature's
admin-token routes and the ``from``/``to`` time range, declared once.

    router = admin_router("analytics")

    @router.get("/campaigns/{campaign_id}/stats", responses=error_responses(400, 401, 404))
    async def get_campaign_stats(hub: HubDep, period: PeriodDep, campaign_id: str) -> ...:
        ... period.since, period.until ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from engagehub.api.auth import require_admin
from engagehub.timeutil import parse_param


def admin_router(tag: str) -> APIRouter:
    """A feature's JSON routes under ``/api``, each behind an admin or scoped API token."""
    return APIRouter(prefix="/api", tags=[tag], dependencies=[Depends(require_admin)])


@dataclass(frozen=True, slots=True)
class Period:
    """A time range of a query, UTC ms: ``since <= t < until``; None is unbounded."""

    since: int | None
    until: int | None


async def _period(
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601 or epoch")] = None,
    to: Annotated[str | None, Query(description="ISO 8601 or epoch (exclusive)")] = None,
) -> Period:
    """The ``from``/``to`` query parameters; a bad time is a 400 naming its parameter."""
    return Period(parse_param(from_, "from"), parse_param(to, "to"))


PeriodDep = Annotated[Period, Depends(_period)]
"""Route parameter ``period: PeriodDep``: the request's ``from``/``to`` range."""
