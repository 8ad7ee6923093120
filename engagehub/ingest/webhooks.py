"""Vendor webhooks: read the raw body once, find the source by name, verify, parse, commit, answer.

    POST /webhooks/sendgrid/{source}           SendGrid Event Webhook (ECDSA signed)
    POST /webhooks/twilio/{source}/status      Twilio status callbacks (X-Twilio-Signature)
    POST /webhooks/twilio/{source}/inbound     Twilio inbound SMS/WhatsApp, answers TwiML
    POST /webhooks/braze-currents/{source}     Braze Currents custom HTTP connector (bearer)
    POST /webhooks/moengage/{source}           MoEngage Streams (bearer)

Nothing is stored unless the signature or token checks out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.api.deps import HubDep
from engagehub.errors import PayloadTooLarge, ValidationFailed
from engagehub.http import JSONResponse, error_responses
from engagehub.hub import Hub
from engagehub.ingest.body import read_body
from engagehub.ingest.respond import commit
from engagehub.model import ParseResult
from engagehub.timeutil import now_ms
from engagehub.vendors import braze, moengage, sendgrid, twilio
from engagehub.vendors.common import check_bearer, form_body

router = APIRouter(tags=["ingest: vendor webhooks"])
_ERRORS = error_responses(400, 401, 403, 404, 413, 415, 503)
_OK: dict[int | str, dict[str, Any]] = {
    200: {"description": "Committed", "content": {"application/json": {"schema": {}}}}
}


def public_url(request: Request, hub: Hub) -> str:
    """The URL the vendor called, as it saw it (``ENGAGEHUB_PUBLIC_BASE_URL`` behind a proxy)."""
    base = hub.settings.public_base_url
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base.rstrip("/") + request.url.path + query


async def _body(request: Request, hub: Hub) -> bytes:
    return await read_body(request, hub.settings.max_webhook_bytes)


@router.post("/webhooks/sendgrid/{source}", responses={**_OK, **_ERRORS}, summary="SendGrid")
async def sendgrid_events(hub: HubDep, source: str, request: Request) -> JSONResponse:
    """SendGrid Signed Event Webhook."""
    src = await hub.source_named(source, (sendgrid.KIND,))
    received = now_ms()
    body = await _body(request, hub)
    sendgrid.verify(
        request.headers, body, src.secret, received, hub.settings.signature_tolerance_seconds
    )
    result = sendgrid.parse(body, hub.settings.default_region)
    return await commit(hub, src.id, result, received, single=False)


async def _twilio_params(request: Request, hub: Hub, secret: str | None) -> dict[str, str]:
    body = await _body(request, hub)
    pairs = form_body(body)
    twilio.verify(request.headers, body, public_url(request, hub), secret, pairs)
    return dict(pairs)


@router.post(
    "/webhooks/twilio/{source}/status",
    responses={**_OK, **_ERRORS},
    summary="Twilio status callback",
)
async def twilio_status(hub: HubDep, source: str, request: Request) -> JSONResponse:
    """A message status; ``?m=<message id>`` on the callback URL links it to our message."""
    src = await hub.source_named(source, (twilio.KIND,))
    received = now_ms()
    params = await _twilio_params(request, hub, src.secret)
    event = twilio.parse_status(
        params, received, request.query_params.get("m"), hub.settings.default_region
    )
    return await commit(hub, src.id, ParseResult([event]), received, single=True)


@router.post(
    "/webhooks/twilio/{source}/inbound",
    responses={200: {"description": "TwiML", "content": {"text/xml": {}}}, **_ERRORS},
    summary="Twilio inbound message",
)
async def twilio_inbound(hub: HubDep, source: str, request: Request) -> Response:
    """An inbound SMS/WhatsApp; STOP/START/HELP keywords are logged for the consent processor."""
    src = await hub.source_named(source, (twilio.KIND,))
    received = now_ms()
    params = await _twilio_params(request, hub, src.secret)
    event = twilio.parse_inbound(params, received, hub.settings.default_region)
    await hub.append(src.id, [event], received)
    replies = src.config.get("replies", {}) if isinstance(src.config, dict) else {}
    keyword = event.properties.get("keyword")
    reply = replies.get(keyword) or replies.get(event.properties.get("keyword_action"))
    return Response(twilio.twiml(reply if isinstance(reply, str) else None), media_type="text/xml")


@router.post(
    "/webhooks/braze-currents/{source}",
    responses={**_OK, **_ERRORS},
    summary="Braze Currents custom HTTP connector",
)
async def braze_currents(hub: HubDep, source: str, request: Request) -> JSONResponse:
    """Braze retries a 400 event by event, splits on 413 and retries 429/5xx: the good events
    of a partly bad batch are stored before the 400, and their retries are deduplicated."""
    src = await hub.source_named(source, (braze.KIND,))
    check_bearer(request.headers, src.secret)
    received = now_ms()
    result = braze.parse_http(await _body(request, hub), hub.settings.default_region)
    total = len(result.events) + len(result.rejected)
    if total > braze.MAX_HTTP_EVENTS:
        raise PayloadTooLarge(
            f"{total} events in one request; the limit is {braze.MAX_HTTP_EVENTS}",
            count=total,
            limit=braze.MAX_HTTP_EVENTS,
        )
    if result.events:
        await hub.append(src.id, result.events, received)
    if result.rejected:
        raise ValidationFailed(
            f"{len(result.rejected)} of {total} events were rejected; the others are stored",
            accepted=len(result.events),
            rejected=[r.body() for r in result.rejected],
        )
    return JSONResponse({"success": True, "accepted": len(result.events)})


@router.post("/webhooks/moengage/{source}", responses={**_OK, **_ERRORS}, summary="MoEngage")
async def moengage_events(hub: HubDep, source: str, request: Request) -> JSONResponse:
    """MoEngage Streams events."""
    src = await hub.source_named(source, (moengage.KIND,))
    check_bearer(request.headers, src.secret)
    received = now_ms()
    result = moengage.parse(await _body(request, hub), hub.settings.default_region)
    return await commit(hub, src.id, result, received, single=False)
