"""Dashboard page ``/live``: the latest events of the log, and ``/live/events`` that its
script polls for newer ones (session cookie, not the API token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from engagehub.api.deps import HubDep
from engagehub.eventjson import event_json
from engagehub.http import INT64_MAX, JSONResponse
from engagehub.hub import Hub
from engagehub.storage import logread
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.web.common import current, guarded, render

router = APIRouter(include_in_schema=False)


def _latest(conn: Connection, after: int | None, limit: int = 50) -> list[dict[str, Any]]:
    q = (
        logread.EventQuery(limit=limit, after_seq=after)
        if after is not None
        else logread.EventQuery(limit=limit)
    )
    events, _ = logread.query(conn, q)
    names = source_store.names(conn)
    out = [event_json(e, names, raw=True) for e in events]
    for e in out:
        e.pop("raw", None)
    return out


@router.get("/live")
async def live_page(request: Request) -> Response:
    """The latest events; the page script polls ``/live/events`` for new ones."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        events = await hub.read(lambda c: _latest(c, None))
        head = max((e["seq"] for e in events), default=0)
        return render("live.html", csrf=sess["csrf"], events=events, head=head)

    return await guarded(request, page)


@router.get("/live/events")
async def live_events(
    hub: HubDep, request: Request, after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0
) -> Response:
    """Events after a log position, oldest first (session cookie, not the API token)."""
    if await current(request) is None:
        return JSONResponse(
            {"error": {"code": "unauthorized", "message": "log in first", "details": {}}},
            status_code=401,
        )
    events = await hub.read(lambda c: _latest(c, after, 200))
    return JSONResponse({"events": events}, headers={"Cache-Control": "no-store"})
