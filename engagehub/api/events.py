"""``GET /api/events``: the log, filtered, newest first, with cursor pagination."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.eventjson import SHAPE_VERSION, event_json
from engagehub.http import JSONResponse, error_responses
from engagehub.storage import logread
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.storage.keyset import page
from engagehub.timeutil import format_ts, parse_param

router = admin_router("events")


@router.get(
    "/events",
    summary="Events of the log, filtered; newest first unless order=asc",
    responses=error_responses(400, 401, 404),
)
async def list_events(
    hub: HubDep,
    user_id: str | None = None,
    event: str | None = None,
    channel: str | None = None,
    campaign_id: str | None = None,
    message_id: str | None = None,
    source: str | None = None,
    since: Annotated[str | None, Query(description="ISO 8601 or epoch; event time >=")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 or epoch; event time <")] = None,
    unmapped: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
) -> JSONResponse:
    """Filter by user, canonical event, channel, campaign, message, source, time, unmapped."""
    q = logread.EventQuery(
        user_id=user_id,
        event=event,
        channel=channel,
        campaign_id=campaign_id,
        message_id=message_id,
        since=parse_param(since, "since"),
        until=parse_param(until, "until"),
        unmapped=unmapped,
        limit=limit,
        cursor=cursor,
        ascending=order == "asc",
    )

    def run(conn: Connection) -> dict[str, Any]:
        names = source_store.names(conn)
        if source is not None:
            q.source_id = source_store.by_name(conn, source).id
        events, next_cursor = logread.query(conn, q)
        return {
            "events": [event_json(e, names, raw=True) for e in events],
            "next_cursor": next_cursor,
            "shape_version": SHAPE_VERSION,
        }

    return JSONResponse(await hub.read(run))


@router.get(
    "/events/unmapped",
    summary="Vendor event names the taxonomy does not map, with counts (paginated)",
    responses=error_responses(400, 401),
)
async def unmapped_counts(
    hub: HubDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Annotated[str | None, Query(max_length=18, pattern="^[0-9]+$")] = None,
) -> JSONResponse:
    """Counts kept by the ``unmapped`` processor, most frequent first; ``next_cursor`` pages on."""
    offset = int(cursor) if cursor else 0

    def run(conn: Connection) -> dict[str, Any]:
        names = source_store.names(conn)
        rows = conn.all(
            "SELECT source_id, vendor_event, count, first_seen, last_seen FROM unmapped_events "
            "ORDER BY count DESC, vendor_event, source_id LIMIT ? OFFSET ?",
            (limit + 1, offset),
        )
        shown, last = page(rows, limit)
        counts = [
            {
                "source": names.get(r["source_id"], str(r["source_id"])),
                "vendor_event": r["vendor_event"],
                "count": r["count"],
                "first_seen": format_ts(r["first_seen"]),
                "last_seen": format_ts(r["last_seen"]),
            }
            for r in shown
        ]
        return {"unmapped": counts, "next_cursor": str(offset + limit) if last else None}

    return JSONResponse(await hub.read(run))
