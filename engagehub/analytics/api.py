"""Analytics API: message lifecycles, campaigns, campaign stats, conversion goals (admin token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path as FastPath
from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from engagehub.analytics import goals as goal_store
from engagehub.analytics import service, stats
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.api.deps import HubDep
from engagehub.api.routing import PeriodDep, admin_router
from engagehub.http import INT64_MAX, JSONResponse, error_responses
from engagehub.hub import Hub
from engagehub.ingest.body import body_as
from engagehub.processing import shards
from engagehub.storage import events as log
from engagehub.storage.base import Connection

router = admin_router("analytics")
_CATCH_UP_S = 5.0


async def settled(hub: Hub) -> dict[str, int]:
    """Wait (briefly) until analytics applied every event committed before this request."""
    head = await hub.read(log.head)
    if hub.settings.run_processors and hub.runner.processors:
        try:
            await hub.runner.wait_for(head, [AnalyticsProcessor.name], timeout=_CATCH_UP_S)
        except TimeoutError:
            pass
    cursor = await hub.read(lambda c: shards.position(c, AnalyticsProcessor.name))
    return {"log_head": head, "applied_upto": cursor}


@router.get(
    "/messages/{message_id}",
    summary="A message's lifecycle (first time of each milestone, final status) and timeline",
    responses=error_responses(401, 404),
)
async def get_message(hub: HubDep, message_id: str) -> JSONResponse:
    """Linked across vendors by message id."""
    await settled(hub)
    return JSONResponse(await hub.read(lambda c: service.message_view(c, message_id)))


@router.get("/campaigns", summary="Campaigns with all-time totals", responses=error_responses(401))
async def get_campaigns(
    hub: HubDep, limit: Annotated[int, Query(ge=1, le=10000)] = 1000
) -> JSONResponse:
    """Most recently active first."""
    progress = await settled(hub)
    data = await hub.read(lambda c: stats.list_campaigns(c, limit))
    return JSONResponse({"campaigns": data, **progress})


@router.get(
    "/campaigns/{campaign_id}/stats",
    summary="Campaign stats from rollups: totals, rates, breakdowns, series, links, bounces",
    responses=error_responses(400, 401, 404),
)
async def get_campaign_stats(
    hub: HubDep,
    campaign_id: str,
    period: PeriodDep,
    channel: str | None = None,
    variation: str | None = None,
    interval: Annotated[str, Query(description="hour, day or auto")] = "auto",
) -> JSONResponse:
    """Counts fall in the range by the time of their milestone (UTC hours)."""
    since, until = period.since, period.until
    progress = await settled(hub)

    def run(conn: Connection) -> dict[str, Any]:
        return stats.campaign_stats(conn, campaign_id, since, until, channel, variation, interval)

    return JSONResponse({**await hub.read(run), **progress})


class GoalIn(BaseModel):
    """Body of ``POST /api/goals``."""

    model_config = ConfigDict(extra="forbid")
    campaign: str
    event: str
    where: str | None = None
    within: str = "72h"


@router.get("/goals", summary="Conversion goals", responses=error_responses(401))
async def list_goals(hub: HubDep, campaign: str | None = None) -> JSONResponse:
    """Every goal, or a campaign's."""
    goals = await hub.read(goal_store.load)
    return JSONResponse(
        {"goals": [g.public() for g in goals if campaign is None or g.campaign_id == campaign]}
    )


@router.post(
    "/goals",
    status_code=201,
    summary="Add a conversion goal (goal events already in the log are attributed)",
    responses=error_responses(400, 401, 413),
)
async def add_goal(hub: HubDep, request: Request) -> JSONResponse:
    """``{"campaign", "event", "where", "within"}``; ``where`` errors name the bad token."""
    body = await body_as(request, GoalIn)
    goal_store.validate(body.campaign, body.event, body.where, body.within)
    await settled(hub)  # the backfill count then covers everything sent before this request
    created = await hub.write(
        lambda conn: service.add_goal(conn, body.campaign, body.event, body.where, body.within)
    )
    return JSONResponse(created, status_code=201)


@router.put(
    "/goals/{goal_id}",
    summary="Edit a goal (same id); its conversions are re-evaluated",
    responses=error_responses(400, 401, 404, 413),
)
async def change_goal(
    hub: HubDep, request: Request, goal_id: Annotated[int, FastPath(ge=1, le=INT64_MAX)]
) -> JSONResponse:
    """The whole new definition, as for ``POST /api/goals``."""
    body = await body_as(request, GoalIn)
    goal_store.validate(body.campaign, body.event, body.where, body.within)
    await settled(hub)
    changed = await hub.write(
        lambda conn: service.change_goal(
            conn, goal_id, body.campaign, body.event, body.where, body.within
        )
    )
    return JSONResponse(changed)


@router.delete(
    "/goals/{goal_id}",
    status_code=204,
    summary="Delete a goal; its conversions are re-evaluated",
    responses=error_responses(401, 404),
)
async def delete_goal(
    hub: HubDep, goal_id: Annotated[int, FastPath(ge=1, le=INT64_MAX)]
) -> Response:
    """Messages converted by it may still convert by another goal."""
    await hub.write(lambda conn: service.remove_goal(conn, goal_id))
    return Response(status_code=204)
