"""What analytics.js (``@segment/analytics-next``) fetches besides its calls: its CDN settings.

``AnalyticsBrowser.load({writeKey, cdnURL})`` first reads
``{cdnURL}/v1/projects/{writeKey}/settings``; the ``Segment.io`` integration found there tells
the library where to send events. We point it back at this server, so a page sets only
``cdnURL``. ``metrics.sampleRate: 0`` keeps the library from posting its own usage counters;
older settings may still make it post them to ``/v1/m``, which is accepted and discarded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response

from engagehub.api.deps import HubDep
from engagehub.errors import AuthError, NotFound
from engagehub.http import JSONResponse, error_responses
from engagehub.ingest.cors import check_origin

router = APIRouter(tags=["ingest: Segment"])

_ACCEPTS = ("segment",)


def api_location(request: Request, public_base_url: str | None) -> tuple[str, str]:
    """``(protocol, apiHost)`` of this server's ``/v1`` as the browser should reach it."""
    if public_base_url:
        parts = urlsplit(public_base_url.rstrip("/"))
        return parts.scheme or "https", parts.netloc + parts.path + "/v1"
    base = request.base_url
    return base.scheme, base.netloc + base.path.rstrip("/") + "/v1"


def cdn_settings(write_key: str, protocol: str, api_host: str) -> dict[str, Any]:
    """The settings document, shaped like Segment's CDN answer for a source with no destinations."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


@router.get(
    "/v1/projects/{write_key}/settings",
    summary="analytics.js settings for a write key (its Segment.io integration points here)",
    responses=error_responses(403, 404),
)
async def project_settings(hub: HubDep, request: Request, write_key: str) -> JSONResponse:
    """Known, enabled segment sources only; an unknown key is 404 like Segment's CDN."""
    try:
        source = await hub.source_for_key(write_key, _ACCEPTS)
    except AuthError:
        raise NotFound("no source has this write key", write_key_hint=write_key[:4] + "…") from None
    check_origin(request.headers.get("origin"), source.name, source.config)
    protocol, api_host = api_location(request, hub.settings.public_base_url)
    return JSONResponse(cdn_settings(write_key, protocol, api_host))


@router.post(
    "/v1/m",
    status_code=204,
    summary="analytics.js usage metrics: accepted and discarded (the body is never read)",
)
async def library_metrics() -> Response:
    """Nothing is stored: these counters describe the library, not anyone's engagement."""
    return Response(status_code=204)
