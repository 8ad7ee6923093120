"""Vendor webhooks, generated from the vendor registry: one route per ``Webhook`` a vendor
module declares (``vendors.webhooks()``), each handled the same way —

find the source by name (and kind), verify (bearer tokens before the body is read; signatures
over the body after), parse, store the good events, answer (``ingest.respond``).

    POST /webhooks/sendgrid/{source}           SendGrid Event Webhook (ECDSA signed)
    POST /webhooks/twilio/{source}/status      Twilio status callbacks (X-Twilio-Signature)
    POST /webhooks/twilio/{source}/inbound     Twilio inbound SMS/WhatsApp, answers TwiML
    POST /webhooks/braze-currents/{source}     Braze Currents custom HTTP connector (bearer)
    POST /webhooks/moengage/{source}           MoEngage Streams (bearer)

Nothing is stored unless the signature or token checks out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.api.deps import HubDep
from engagehub.http import error_responses
from engagehub.hub import Hub
from engagehub.ingest.body import read_body
from engagehub.ingest.respond import answer, store
from engagehub.timeutil import now_ms
from engagehub.vendors import webhooks
from engagehub.vendors.base import Context, Signed, Webhook

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


def _handler(kind: str, hook: Webhook) -> Callable[..., Awaitable[Response]]:
    async def receive(hub: HubDep, source: str, request: Request) -> Response:
        src = await hub.source_named(source, (kind,))
        received = now_ms()
        settings = hub.settings

        def signed(body: bytes) -> Signed:
            return Signed(
                request.headers,
                body,
                public_url(request, hub),
                src.secret,
                received,
                settings.signature_tolerance_seconds,
            )

        if not hook.signed_body:  # a bearer token: checked before reading the body
            hook.verify(signed(b""))
        body = await read_body(request, settings.max_webhook_bytes)
        if hook.signed_body:
            hook.verify(signed(body))
        ctx = Context(received, settings.default_region, dict(request.query_params))
        result = await store(
            hub,
            src.id,
            hook.parse(body, ctx),
            received,
            single=hook.single,
            partial=hook.partial,
            max_events=hook.max_events,
        )
        if hook.reply is not None:
            config = src.config if isinstance(src.config, dict) else {}
            return Response(hook.reply(result, config), media_type=hook.reply_media_type)
        return answer(result, count=True)

    receive.__doc__ = hook.description
    return receive


for _kind, _hook in webhooks():
    _reply: dict[int | str, dict[str, Any]] = {
        200: {"description": _hook.reply_description, "content": {_hook.reply_media_type: {}}}
    }
    router.add_api_route(
        f"/webhooks/{_hook.path}",
        _handler(_kind, _hook),
        methods=["POST"],
        name=_hook.name,
        summary=_hook.summary,
        description=_hook.description,
        responses={**(_reply if _hook.reply else _OK), **_ERRORS},
        response_model=None,
    )
