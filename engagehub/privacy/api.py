"""``/api/people``: erase a person (admin), follow an erasure (admin), export a person (read)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from engagehub.access import audit
from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.http import JSONResponse, error_responses
from engagehub.ops import metrics
from engagehub.privacy import erase, export, requests
from engagehub.storage import events as log
from engagehub.storage.base import Connection

metrics.report_lag("privacy", requests.pending_lag)  # /metrics: pending vendor erasure requests

router = admin_router("privacy")


class EraseRequest(BaseModel):
    """Body of ``POST /api/people/erase``."""

    key: str = Field(min_length=1, max_length=1000, description="Any identifier of the person.")
    reason: str | None = Field(default=None, max_length=1000)


@router.post(
    "/people/erase",
    status_code=202,
    summary="Erase a person (everything the key resolves to); follow the returned id",
    responses=error_responses(400, 401, 403),
)
async def erase_person(hub: HubDep, request: Request, body: EraseRequest) -> JSONResponse:
    """Suppressed at once; removal, notices and wiping run in the background."""
    principal = request.state.principal
    # Identities still in flight through the processors must be known before we resolve.
    await hub.caught_up(await hub.read(log.head))

    def run(conn: Connection) -> dict[str, Any]:
        region = hub.settings.default_region
        return erase.request(conn, body.key, body.reason, principal.name, region)

    job = await hub.write(run)
    audit.annotate(request, target=job["id"], params={"key": "[erased]", "reason": body.reason})
    hub.services.wake("privacy-erasures")
    return JSONResponse(job, status_code=202)


@router.get(
    "/people/erasures/{erasure_id}",
    summary="An erasure's state (pending, done) and what it removed",
    responses=error_responses(401, 403, 404),
)
async def erasure_state(hub: HubDep, erasure_id: str) -> JSONResponse:
    """Never names the person: only counts and the reason."""
    return JSONResponse(await hub.read(lambda c: erase.get(c, erasure_id)))


@router.get(
    "/people/export",
    summary="Everything held on a person as one streamed JSON document (or zip)",
    responses=error_responses(400, 401, 404),
)
async def export_person(
    hub: HubDep,
    key: str,
    format: Literal["json", "zip"] = Query(
        default="json", description="zip: the same document, deflated (large histories)."
    ),
) -> StreamingResponse:
    """Profile, identities, subscriptions and their history, messages, every event."""
    region = hub.settings.default_region
    parts = export.document_from(hub.db, key, region)
    first = await run_in_threadpool(next, parts)  # a 404 is still an answer, not a stream
    whole = export.prepend(first, parts)
    if format == "zip":
        return StreamingResponse(
            export.zipped(whole),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="person-export.zip"'},
        )
    return StreamingResponse(
        whole,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="person-export.json"'},
    )


class Decision(BaseModel):
    """Body of ``POST /api/people/erasure-requests/{id}``."""

    action: str = Field(description="confirm (erase the person the request names) or dismiss.")


@router.get(
    "/people/erasure-requests",
    summary="Erasure requests vendors sent (Braze UserDeleteRequest, Segment delete...)",
    responses=error_responses(400, 401, 403),
)
async def vendor_requests(hub: HubDep, state: str | None = None, limit: int = 100) -> JSONResponse:
    """Newest first; ``state=pending`` lists what waits for a decision. Never names the person."""
    limit = max(1, min(limit, 1000))
    items = await hub.read(lambda c: requests.listing(c, state, limit))
    return JSONResponse({"requests": items})


@router.post(
    "/people/erasure-requests/{request_id}",
    summary="Confirm (erase the person) or dismiss a vendor's erasure request",
    responses=error_responses(400, 401, 403, 404),
)
async def decide_request(
    hub: HubDep, request: Request, request_id: str, body: Decision
) -> JSONResponse:
    """A confirmation starts an erasure exactly as ``POST /api/people/erase`` does."""
    principal = request.state.principal
    await hub.caught_up(await hub.read(log.head))
    region = hub.settings.default_region

    def run(conn: Connection) -> dict[str, Any]:
        return requests.decide(conn, request_id, body.action, principal.name, region)

    found = await hub.write(run)
    audit.annotate(request, target=request_id, params={"action": body.action})
    if "erasure" in found:
        hub.services.wake("privacy-erasures")
    return JSONResponse(found)
