"""Messaging admin API: templates, previews, sends, audiences, broadcasts, journeys.

POST/GET       /api/templates            GET/DELETE /api/templates/{name}
POST           /api/templates/{name}/preview
POST           /api/sends                GET /api/sends/{id}
POST/GET       /api/audiences            GET /api/audiences/{name}
POST/GET       /api/broadcasts           GET /api/broadcasts/{name}
POST           /api/broadcasts/{name}/start|pause|resume|unschedule|schedule
POST/GET       /api/journeys             GET /api/journeys/{name}
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.consent.model import contact_for
from engagehub.errors import PayloadError
from engagehub.http import JSONResponse, error_responses
from engagehub.ingest.body import body_as
from engagehub.messaging import audiences, broadcasts, journeys, sender, templates
from engagehub.messaging.delivery import send_now
from engagehub.messaging.preview import PreviewIn, preview, send_json
from engagehub.storage.base import Connection

router = admin_router("messaging")
_E = error_responses(400, 401, 404, 409)


@router.post("/templates", summary="Create or replace a template", responses=_E)
async def put_template(hub: HubDep, request: Request) -> JSONResponse:
    """Validates the Liquid of every part before storing."""
    tpl = await body_as(request, templates.TemplateIn)
    return JSONResponse(await hub.write(lambda c: templates.save(c, tpl)), status_code=201)


@router.get("/templates", summary="List templates")
async def get_templates(hub: HubDep) -> JSONResponse:
    """Every template."""
    return JSONResponse({"templates": await hub.read(templates.list_all)})


@router.get("/templates/{name}", summary="One template", responses=_E)
async def get_template(hub: HubDep, name: str) -> JSONResponse:
    """A stored template."""
    return JSONResponse(await hub.read(lambda c: templates.describe(c, name)))


@router.delete("/templates/{name}", summary="Delete a template", responses=_E)
async def delete_template(hub: HubDep, name: str) -> JSONResponse:
    """Remove a template."""
    await hub.write(lambda c: templates.delete(c, name))
    return JSONResponse({"deleted": name})


@router.post("/templates/{name}/preview", summary="Render a template", responses=_E)
async def preview_template(hub: HubDep, name: str, request: Request) -> JSONResponse:
    """Strict by default: unknown merge tags are a 400 naming each."""
    p = await body_as(request, PreviewIn)
    return JSONResponse(await hub.read(lambda c: preview(c, hub.settings, name, p)))


class SendIn(BaseModel):
    """One message to one address."""

    template: str
    to: str = Field(min_length=1, max_length=320)
    transactional: bool = False
    """Send without a marketing subscription (receipts, password resets)."""
    test: bool = False
    """A test send: subject marked [TEST], missing merge tags allowed, no consent check."""
    event: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)


@router.post("/sends", summary="Send one message now", responses=error_responses(400, 401, 404))
async def post_send(hub: HubDep, request: Request) -> JSONResponse:
    """Stored before sending; 200 with the outcome (sent, dropped, failed, pending retry)."""
    s = await body_as(request, SendIn)

    def queue(conn: Connection) -> str:
        tpl = templates.load(conn, s.template)
        try:
            to = contact_for(tpl.channel, s.to, hub.settings.default_region)
        except PayloadError as exc:
            raise PayloadError(exc.message, field="to", value=s.to) from None
        context = {"event": s.event, "data": s.data, "test": s.test}
        with conn.transaction():
            return sender.enqueue(
                conn, tpl.name, tpl.channel, to, context, transactional=s.transactional or s.test
            )

    mid = await hub.write(queue)
    await send_now(hub.db, hub.settings, mid)
    result = await hub.read(lambda c: send_json(c, mid))
    return JSONResponse(result, status_code=200 if result["state"] != "pending" else 202)


@router.get("/sends/{message_id}", summary="One message and its state", responses=_E)
async def get_send(hub: HubDep, message_id: str) -> JSONResponse:
    """State, provider id and error of one message."""
    return JSONResponse(await hub.read(lambda c: send_json(c, message_id)))


@router.post("/audiences", summary="Save an audience", responses=_E)
async def post_audience(hub: HubDep, request: Request) -> JSONResponse:
    """A saved filter over subscription state, traits and past events."""
    aud = await body_as(request, audiences.AudienceIn)
    return JSONResponse(await hub.write(lambda c: audiences.save(c, aud)), status_code=201)


@router.get("/audiences", summary="List audiences")
async def get_audiences(hub: HubDep) -> JSONResponse:
    """Every audience."""
    return JSONResponse({"audiences": await hub.read(audiences.list_all)})


@router.get("/audiences/{name}", summary="An audience and its current size", responses=_E)
async def get_audience(hub: HubDep, name: str) -> JSONResponse:
    """The definition, member count and the first members."""

    def get(conn: Connection) -> dict[str, Any]:
        aud = audiences.load(conn, name)
        members = audiences.members(conn, aud)
        return {**aud.model_dump(), "size": len(members), "sample": members[:20]}

    return JSONResponse(await hub.read(get))


@router.post("/broadcasts", summary="Create a broadcast (draft)", responses=_E)
async def post_broadcast(hub: HubDep, request: Request) -> JSONResponse:
    """Template x audience at a rate; start it with /start."""
    b = await body_as(request, broadcasts.BroadcastIn)
    return JSONResponse(await hub.write(lambda c: broadcasts.create(c, b)), status_code=201)


@router.get("/broadcasts", summary="List broadcasts")
async def get_broadcasts(hub: HubDep) -> JSONResponse:
    """Every broadcast with its progress."""
    return JSONResponse({"broadcasts": await hub.read(broadcasts.list_all)})


@router.get("/broadcasts/{name}", summary="Broadcast status", responses=_E)
async def get_broadcast(hub: HubDep, name: str) -> JSONResponse:
    """State, counts per recipient state, progress."""
    return JSONResponse(await hub.read(lambda c: broadcasts.status(c, name)))


class ScheduleIn(BaseModel):
    """Body of ``POST /api/broadcasts/{name}/schedule``."""

    model_config = ConfigDict(extra="forbid")
    at: str = Field(min_length=1, max_length=64)
    """ISO 8601 (UTC when no offset) or epoch seconds/ms; a past time starts it at once."""


@router.post("/broadcasts/{name}/schedule", summary="Schedule a draft broadcast", responses=_E)
async def schedule_broadcast(hub: HubDep, name: str, request: Request) -> JSONResponse:
    """The broadcast becomes ``scheduled`` and starts by itself at ``at``."""
    body = await body_as(request, ScheduleIn)
    result = await hub.write(lambda c: broadcasts.schedule(c, name, body.at))
    hub.services.wake("messaging")
    return JSONResponse(result)


@router.post(
    "/broadcasts/{name}/{action}", summary="Start, pause, resume or unschedule", responses=_E
)
async def act_broadcast(hub: HubDep, name: str, action: str) -> JSONResponse:
    """``start`` snapshots the audience; ``pause``/``resume`` stop and restart claiming;
    ``unschedule`` turns a scheduled broadcast back into a draft."""
    result = await hub.write(lambda c: broadcasts.act(c, name, action))
    hub.services.wake("messaging")
    return JSONResponse(result)


@router.post("/journeys", summary="Create a journey", responses=_E)
async def post_journey(hub: HubDep, request: Request) -> JSONResponse:
    """Trigger -> wait -> send steps, exit on the goal event."""
    j = await body_as(request, journeys.JourneyIn)
    return JSONResponse(await hub.write(lambda c: journeys.save(c, j)), status_code=201)


@router.get("/journeys", summary="List journeys")
async def get_journeys(hub: HubDep) -> JSONResponse:
    """Every journey with run counts."""

    def get(conn: Connection) -> list[dict[str, Any]]:
        return [journeys.describe(conn, j.name) for j in journeys.all_journeys(conn)]

    return JSONResponse({"journeys": await hub.read(get)})


@router.get("/journeys/{name}", summary="One journey and its runs", responses=_E)
async def get_journey(hub: HubDep, name: str) -> JSONResponse:
    """Definition, counts and each person's position."""

    def get(conn: Connection) -> dict[str, Any]:
        return {**journeys.describe(conn, name), "people": journeys.runs(conn, name)}

    return JSONResponse(await hub.read(get))
