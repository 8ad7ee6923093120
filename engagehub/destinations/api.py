"""``/api/destinations``: add, list (with lag and last error), remove, replay, dead letters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.destinations import store
from engagehub.destinations.guard import check_destination
from engagehub.http import JSONResponse, error_responses
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts

router = admin_router("destinations")


class NewDestination(BaseModel):
    """Body of ``POST /api/destinations``."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["webhook", "segment", "nats"]
    url: str = Field(min_length=1, max_length=2000)
    secret: str | None = Field(default=None, max_length=4000)
    subject: str | None = Field(default=None, max_length=255)
    events: str | None = Field(default=None, max_length=1000)
    batch: int = Field(default=100, ge=1, le=10_000)
    from_start: bool = False
    """Deliver the whole log, not only events appended from now on."""


class Replay(BaseModel):
    """Body of ``POST /api/destinations/{name}/replay``."""

    model_config = ConfigDict(populate_by_name=True)

    from_time: str | int | None = Field(default=None, alias="from")
    dead_letters: bool = False
    dead_letter_id: int | None = None
    """Queue only this dead letter again (ids as listed by ``/dead-letters``)."""


def status_json(dest: store.Destination, head: int) -> dict[str, Any]:
    """Public form of a destination with its lag (never the secret)."""
    return {
        "name": dest.name,
        "kind": dest.kind,
        "url": dest.url,
        "subject": dest.subject,
        "events": dest.events,
        "batch": dest.batch_size,
        "has_secret": bool(dest.secret),
        "cursor": dest.cursor,
        "lag": max(0, head - dest.cursor),
        "in_flight": dest.inflight_upto is not None,
        "attempts": dest.attempts,
        "next_attempt_at": format_ts(dest.next_attempt_at) if dest.next_attempt_at else None,
        "delivered": dest.delivered,
        "failures": dest.failures,
        "dead_lettered": dest.dead,
        "last_error": dest.last_error,
        "last_error_at": format_ts(dest.last_error_at),
        "last_success_at": format_ts(dest.last_success_at),
        "created_at": format_ts(dest.created_at),
        "paused": dest.disabled,
    }


def statuses(conn: Connection) -> list[dict[str, Any]]:
    """Every destination's status."""
    head = log.head(conn)
    return [status_json(d, head) for d in store.list_all(conn)]


def export_statuses(conn: Connection) -> list[dict[str, Any]]:
    """Every export target: position, lag behind the log head, files and events, last run."""
    head = log.head(conn)
    return [
        {
            "name": t["name"],
            "seq": int(t["seq"]),
            "lag": max(0, head - int(t["seq"])),
            "running_upto": t["pending_upto"],
            "files": int(t["files"]),
            "events": int(t["events"]),
            "last_run_at": format_ts(t["updated_at"]),
        }
        for t in store.export_targets(conn)
    ]


@router.get("/destinations", summary="Destinations with lag and last error")
async def list_destinations(hub: HubDep) -> JSONResponse:
    """Every destination's delivery status, and every export target's position."""

    def run(conn: Connection) -> dict[str, Any]:
        return {"destinations": statuses(conn), "export_targets": export_statuses(conn)}

    return JSONResponse(await hub.read(run))


@router.post(
    "/destinations",
    status_code=201,
    summary="Add a destination",
    responses=error_responses(400, 401, 409),
)
async def add_destination(hub: HubDep, body: NewDestination) -> JSONResponse:
    """Check the URL (SSRF guard) and add the destination; it starts at the log head."""
    check_destination(body.url, body.kind, body.secret, hub.settings.allow_private_destinations)

    def run(conn: Connection) -> dict[str, Any]:
        dest = store.create(
            conn,
            body.name,
            body.kind,
            body.url,
            body.secret,
            body.subject,
            body.events,
            body.batch,
            start=0 if body.from_start else None,
        )
        return status_json(dest, log.head(conn))

    created = await hub.write(run)
    hub.services.wake("destinations")
    return JSONResponse(created, status_code=201)


@router.get("/destinations/{name}", summary="One destination", responses=error_responses(401, 404))
async def get_destination(hub: HubDep, name: str) -> JSONResponse:
    """Status of one destination."""
    return JSONResponse(await hub.read(lambda c: status_json(store.get(c, name), log.head(c))))


@router.delete(
    "/destinations/{name}", summary="Remove a destination", responses=error_responses(401, 404)
)
async def delete_destination(hub: HubDep, name: str) -> JSONResponse:
    """Remove it and its dead letters."""
    await hub.write(lambda c: store.delete(c, name))
    return JSONResponse({"deleted": name})


@router.get(
    "/destinations/{name}/dead-letters",
    summary="Batches given up on",
    responses=error_responses(401, 404),
)
async def dead_letters(hub: HubDep, name: str) -> JSONResponse:
    """Dead letters with their seq ranges and errors."""

    def run(conn: Connection) -> list[dict[str, Any]]:
        store.get(conn, name)
        return store.dead_letters(conn, name)

    return JSONResponse({"dead_letters": await hub.read(run)})


@router.post(
    "/destinations/{name}/replay",
    summary="Re-send dead letters, or rewind to a time",
    responses=error_responses(400, 401, 404),
)
async def replay(hub: HubDep, name: str, body: Replay) -> JSONResponse:
    """Rewind the cursor (to ``from``, or the start) or queue the dead letters again."""
    from_ms = store.parse_from(body.from_time)
    if body.dead_letter_id is not None:
        letter = body.dead_letter_id
        result = await hub.write(lambda c: store.replay_letter(c, name, letter))
    else:
        result = await hub.write(lambda c: store.replay(c, name, from_ms, body.dead_letters))
    hub.services.wake("destinations")
    return JSONResponse(result)


@router.post(
    "/destinations/{name}/{action}",
    summary="Pause or resume a destination",
    responses=error_responses(400, 401, 404),
)
async def pause_or_resume(
    hub: HubDep, name: str, action: Literal["pause", "resume"]
) -> JSONResponse:
    """Paused, nothing is delivered and the cursor waits; resumed, delivery starts at once."""
    dest = await hub.write(lambda c: store.set_paused(c, name, action == "pause"))
    hub.services.wake("destinations")
    return JSONResponse(await hub.read(lambda c: status_json(dest, log.head(c))))
