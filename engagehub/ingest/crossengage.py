"""CrossEngage events API: ``POST /crossengage/events`` with ``X-XNG-AuthToken`` -> 202."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from engagehub.api.deps import HubDep
from engagehub.errors import PayloadError
from engagehub.http import JSONResponse, error_responses
from engagehub.ingest.body import read_body
from engagehub.ingest.respond import commit
from engagehub.timeutil import now_ms
from engagehub.vendors import crossengage

router = APIRouter(tags=["ingest: CrossEngage"])

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "events"],
    "properties": {
        "id": {"type": "string"},
        "events": {
            "type": "array",
            "maxItems": crossengage.MAX_EVENTS,
            "items": {
                "type": "object",
                "required": ["event", "timestamp"],
                "properties": {
                    "event": {"type": "string"},
                    "timestamp": {"type": "string"},
                    "properties": {"type": "object"},
                },
            },
        },
    },
}


@router.post(
    "/crossengage/events",
    status_code=202,
    summary="CrossEngage outbound events (at most 50 per request)",
    responses={
        202: {"description": "Committed", "content": {"application/json": {"schema": {}}}},
        **error_responses(400, 401, 403, 413, 415, 503),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}},
        "parameters": [
            {
                "name": "X-XNG-AuthToken",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            },
            {
                "name": "X-XNG-ApiVersion",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "enum": ["1"]},
            },
        ],
    },
)
async def crossengage_events(hub: HubDep, request: Request) -> JSONResponse:
    """Store CrossEngage outbound events for the user ``id``."""
    received_at = now_ms()
    source = await hub.source_for_key(request.headers.get("x-xng-authtoken"), (crossengage.KIND,))
    version = request.headers.get("x-xng-apiversion")
    if version != crossengage.API_VERSION:
        raise PayloadError(
            f"X-XNG-ApiVersion must be {crossengage.API_VERSION}",
            header="X-XNG-ApiVersion",
            value=version,
        )
    body = await read_body(request, hub.settings.max_batch_bytes)
    result = crossengage.parse_body(crossengage.decode(body), hub.settings.default_region)
    return await commit(hub, source.id, result, received_at, single=False, status=202)
