"""Vendor routes, generated from the vendor registry: one route per ``Webhook`` a vendor module
declares (``vendors.webhooks()``), each handled the same way —

find the source (by the name in the path, or by the write key the request carries), verify
(bearer tokens and key headers before the body is read; signatures over the body after), parse,
store the good events, answer (``ingest.respond``).

    POST /v1/{batch,track,identify,page,screen,group,alias} and /v1/{b,t,i,p,s,g,a}
                                               Segment Tracking API (write key: Basic or body)
    POST /crossengage/events                   CrossEngage (X-XNG-AuthToken) -> 202
    POST /webhooks/sendgrid/{source}           SendGrid Event Webhook (ECDSA signed)
    POST /webhooks/twilio/{source}/status      Twilio status callbacks (X-Twilio-Signature)
    POST /webhooks/twilio/{source}/inbound     Twilio inbound SMS/WhatsApp, answers TwiML
    POST /webhooks/braze-currents/{source}     Braze Currents custom HTTP connector (bearer)
    POST /webhooks/moengage/{source}           MoEngage Streams (bearer)

Nothing is stored unless the signature, token or write key checks out.
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
from engagehub.ingest.cors import check_origin
from engagehub.ingest.respond import answer, store
from engagehub.storage.sources import Source
from engagehub.timeutil import now_ms
from engagehub.vendors import webhooks
from engagehub.vendors.base import Context, Signed, Webhook

router = APIRouter()


def public_url(request: Request, hub: Hub) -> str:
    """The URL the vendor called, as it saw it (``ENGAGEHUB_PUBLIC_BASE_URL`` behind a proxy)."""
    base = hub.settings.public_base_url
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base.rstrip("/") + request.url.path + query


async def receive(
    hub: Hub, request: Request, kind: str, hook: Webhook, name: str | None = None
) -> Response:
    """One vendor request: source, checks, body, parse, store, answer."""
    received = now_ms()
    settings = hub.settings
    kinds = (kind, *hook.kinds)
    named = None if name is None else await hub.source_named(name, kinds)

    def signed(body: bytes, source: Source | None) -> Signed:
        return Signed(
            request.headers,
            body,
            public_url(request, hub) if source is not None else "",  # only verifiers read it
            source.secret if source is not None else None,
            received,
            settings.signature_tolerance_seconds,
        )

    async def checked(body: bytes) -> Source:
        source = named
        if source is None:  # the route finds its source by the key the request carries
            key = hook.write_key(signed(body, None)) if hook.write_key is not None else None
            source = await hub.source_for_key(key, kinds)
        if hook.browser:
            check_origin(request.headers.get("origin"), source.name, source.config)
        if hook.verify is not None:
            hook.verify(signed(body, source))
        return source

    limit = settings.max_batch_bytes if hook.batch_limit else settings.max_webhook_bytes
    if hook.signed_body:
        body = await read_body(request, limit)
        src = await checked(body)
    else:  # a bearer token or key header: checked before the body is read
        src = await checked(b"")
        body = await read_body(request, limit)
    ctx = Context(
        received,
        settings.default_region,
        dict(request.query_params),
        call=hook.call,
        max_event_bytes=settings.max_event_bytes,
        vendor=src.kind,
    )
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
    return answer(result, count=hook.count, status=hook.status)


def _handler(kind: str, hook: Webhook) -> Callable[..., Awaitable[Response]]:
    endpoint: Callable[..., Awaitable[Response]]
    if "{source}" in hook.path:

        async def by_name(hub: HubDep, source: str, request: Request) -> Response:
            return await receive(hub, request, kind, hook, source)

        endpoint = by_name
    else:

        async def by_key(hub: HubDep, request: Request) -> Response:
            return await receive(hub, request, kind, hook)

        endpoint = by_key
    endpoint.__doc__ = hook.description
    return endpoint


def _responses(hook: Webhook) -> dict[int | str, dict[str, Any]]:
    """The 2xx answer and the errors a route can give (404: no source of that name)."""
    if hook.reply is not None:
        ok = {"description": hook.reply_description, "content": {hook.reply_media_type: {}}}
    else:
        ok = {"description": hook.answer_description, "content": {"application/json": {}}}
    named = "{source}" in hook.path
    errors = (400, 401, 403, 404, 413, 415, 503) if named else (400, 401, 403, 413, 415, 503)
    return {hook.status: ok, **error_responses(*errors)}


for _kind, _hook in webhooks():
    router.add_api_route(
        _hook.route,
        _handler(_kind, _hook),
        methods=["POST"],
        name=_hook.name,
        summary=_hook.summary,
        description=_hook.description,
        status_code=_hook.status,
        tags=[_hook.tag],
        responses=_responses(_hook),
        response_model=None,
        openapi_extra=dict(_hook.openapi_extra) if _hook.openapi_extra else None,
    )
