"""``/api/sources``: list and create sources (the write key is shown once, at creation)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.errors import PayloadError
from engagehub.http import JSONResponse, error_responses
from engagehub.ingest.cors import check_config
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms
from engagehub.vendors import SOURCE_KINDS

router = admin_router("sources")


class NewSource(BaseModel):
    """Body of ``POST /api/sources``."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    write_key: str | None = Field(default=None, min_length=8, max_length=200)
    secret: str | None = Field(default=None, max_length=4000)
    config: dict[str, Any] = Field(default_factory=dict)


class NewSecret(BaseModel):
    """Body of ``POST /api/sources/{name}/secret``."""

    secret: str = Field(min_length=1, max_length=4000)


def source_json(source: source_store.Source) -> dict[str, Any]:
    """Public form of a source (never the secret)."""
    return {
        "name": source.name,
        "kind": source.kind,
        "write_key_hint": source.write_key_hint,
        "has_secret": bool(source.secret),
        "created_at": format_ts(source.created_at),
        "disabled": source.disabled,
    }


def day_start(now: int | None = None) -> int:
    """Midnight UTC of today, in epoch milliseconds ("events today" counts from here)."""
    ms = now_ms() if now is None else now
    return ms - ms % 86_400_000


def sources_with_activity(conn: Connection) -> list[dict[str, Any]]:
    """Every source with its events today and its last event (the API and the dashboard)."""
    seen = source_store.activity(conn, day_start())
    out = []
    for s in source_store.list_all(conn):
        found = seen.get(s.id, {})
        last = found.get("last")
        out.append(
            {
                **source_json(s),
                "allowed_origins": s.config.get("allowed_origins"),
                "events_today": found.get("today", 0),
                "last_event_at": format_ts(last) if last else None,
            }
        )
    return out


def check_kind(kind: str) -> None:
    """Reject kinds we have no vendor module for, naming the ones we have."""
    if kind not in SOURCE_KINDS:
        raise PayloadError(
            f"unknown source kind {kind!r}; expected one of {', '.join(SOURCE_KINDS)}",
            field="kind",
            value=kind,
        )


@router.get("/sources", summary="Every source", responses=error_responses(401))
async def list_sources(hub: HubDep) -> JSONResponse:
    """Sources without their secrets, with events today and the last event (from the newest
    million log positions)."""
    return JSONResponse({"sources": await hub.read(sources_with_activity)})


@router.post(
    "/sources",
    status_code=201,
    summary="Create a source; the reply holds its write key (shown once)",
    responses=error_responses(400, 401, 409),
)
async def create_source(hub: HubDep, body: NewSource) -> JSONResponse:
    """Create a source of a known kind."""
    check_kind(body.kind)
    check_config(body.config)

    def run(conn: Connection) -> tuple[source_store.Source, str]:
        return source_store.create(
            conn, body.name, body.kind, body.write_key, body.secret, body.config
        )

    source, key = await hub.write(run)
    hub.forget_sources()
    return JSONResponse({**source_json(source), "write_key": key}, status_code=201)


@router.post(
    "/sources/{name}/rotate-key",
    summary="Give a source a new write key (shown once; the old one stops working)",
    responses=error_responses(401, 404),
)
async def rotate_key(hub: HubDep, name: str) -> JSONResponse:
    """A new random write key."""
    key = await hub.write(lambda c: source_store.rotate_key(c, name))
    hub.forget_sources()
    return JSONResponse({"name": name, "write_key": key})


@router.post(
    "/sources/{name}/secret",
    summary="Replace a source's vendor secret (signing key, auth token, bearer token)",
    responses=error_responses(400, 401, 404),
)
async def replace_secret(hub: HubDep, request: Request, name: str, body: NewSecret) -> JSONResponse:
    """The new secret is used from the next request on."""

    def run(conn: Connection) -> source_store.Source:
        source_store.set_secret(conn, name, body.secret)
        return source_store.by_name(conn, name)

    source = await hub.write(run)
    hub.forget_sources()
    return JSONResponse(source_json(source))
