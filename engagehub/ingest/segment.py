"""Segment-compatible Tracking API: ``POST /v1/{batch,track,identify,page,screen,group,alias}``.

The official Segment libraries work unchanged with their host set to this server: the write key
comes as the HTTP Basic user name or as ``writeKey`` in the body; ``200 {"success": true}`` is
sent only after the events are committed. analytics.js uses the short paths ``/v1/t|i|p|s|g|a``
and ``/v1/b`` and sends its JSON as ``text/plain`` (a CORS-simple type): the Content-Type is
never required nor checked, the body is always read as JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from engagehub.api.deps import hub_of
from engagehub.http import JSONResponse, error_responses
from engagehub.ingest.body import read_body
from engagehub.ingest.cors import check_origin
from engagehub.ingest.respond import commit
from engagehub.security.identity import basic_user
from engagehub.timeutil import now_ms
from engagehub.vendors import segment

router = APIRouter(tags=["ingest: Segment"])

CALLS = ("batch", "track", "identify", "page", "screen", "group", "alias")
# analytics.js (browser) posts to one-letter paths: /v1/t is /v1/track and so on.
SHORT = {
    "b": "batch",
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
# MoEngage's Segment integration sends Segment calls with MoEngage's names to a moengage
# source's write key (moengage-source.md): they are read with MoEngage's taxonomy.
_ACCEPTS = ("segment", "moengage")

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "identify", "page", "screen", "group", "alias"],
        },
        "event": {"type": "string"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
    },
}
_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": _EVENT_SCHEMA},
        "writeKey": {"type": "string"},
        "sentAt": {"type": "string", "format": "date-time"},
    },
}
_SUCCESS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Committed. `rejected` lists events of the batch that were refused.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_ERRORS = error_responses(400, 401, 403, 413, 415, 503)


def basic_auth_user(request: Request) -> str | None:
    """The user name of an ``Authorization: Basic`` header (Segment puts the write key there)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    return basic_user(value.strip())


async def handle(request: Request, call: str) -> JSONResponse:
    """Read, authenticate, parse, commit, answer."""
    hub = hub_of(request)
    settings = hub.settings
    received_at = now_ms()
    body = await read_body(request, settings.max_batch_bytes)
    envelope = segment.decode(body, call)
    source = await hub.source_for_key(basic_auth_user(request) or envelope.writeKey, _ACCEPTS)
    check_origin(request.headers.get("origin"), source.name, source.config)
    result = segment.parse_envelope(
        envelope,
        received_at,
        call,
        settings.max_event_bytes,
        settings.default_region,
        vendor="moengage" if source.kind == "moengage" else segment.NAME,
    )
    return await commit(hub, source.id, result, received_at, single=call != "batch")


def _route(call: str, path: str) -> None:
    async def endpoint(request: Request) -> JSONResponse:
        return await handle(request, call)

    endpoint.__name__ = f"segment_{path}"
    schema = _BATCH_SCHEMA if call == "batch" else _EVENT_SCHEMA
    short = "" if path == call else " (analytics.js short path)"
    router.add_api_route(
        f"/v1/{path}",
        endpoint,
        methods=["POST"],
        summary=f"Segment {call} call{short}",
        responses={**_SUCCESS, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {t: {"schema": schema} for t in ("application/json", "text/plain")},
            }
        },
    )


for _call in CALLS:
    _route(_call, _call)
for _short, _call in SHORT.items():
    _route(_call, _short)
