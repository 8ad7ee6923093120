"""``/api/tokens`` (create, list, revoke scoped tokens), ``/api/audit`` (read only); admin scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, Field

from engagehub.access import audit, tokens
from engagehub.api.deps import HubDep
from engagehub.api.routing import PeriodDep, admin_router
from engagehub.http import JSONResponse, error_responses
from engagehub.storage.base import Connection
from engagehub.storage.keyset import page
from engagehub.timeutil import format_ts

router = admin_router("access")


class NewToken(BaseModel):
    """Body of ``POST /api/tokens``."""

    name: str = Field(min_length=1, max_length=64)
    scope: str = Field(description="read, write or admin")


def token_json(row: dict[str, Any]) -> dict[str, Any]:
    """Public form of a token row (times as ISO 8601)."""
    out = dict(row)
    for key in ("created_at", "revoked_at"):
        value = out.get(key)
        out[key] = format_ts(int(value)) if isinstance(value, int) else None
    return out


@router.get(
    "/tokens", summary="Every scoped token (never the token)", responses=error_responses(401, 403)
)
async def list_tokens(hub: HubDep) -> JSONResponse:
    """Names, scopes, hints; revoked ones too."""
    rows = await hub.read(tokens.list_all)
    return JSONResponse({"tokens": [token_json(r) for r in rows]})


@router.post(
    "/tokens",
    status_code=201,
    summary="Create a scoped token; the reply holds it (shown once)",
    responses=error_responses(400, 401, 403, 409),
)
async def create_token(hub: HubDep, request: Request, body: NewToken) -> JSONResponse:
    """A new read, write or admin token."""

    def run(conn: Connection) -> tuple[dict[str, Any], str]:
        with conn.transaction():
            return tokens.create(conn, body.name, body.scope)

    row, token = await hub.write(run)
    audit.annotate(request, target=body.name, params={"scope": body.scope})
    return JSONResponse({**token_json(row), "token": token}, status_code=201)


@router.post(
    "/tokens/{name}/revoke",
    summary="Revoke a token for good (its dashboard sessions end)",
    responses=error_responses(401, 403, 404),
)
async def revoke_token(hub: HubDep, name: str) -> JSONResponse:
    """Idempotent."""

    def run(conn: Connection) -> dict[str, Any]:
        with conn.transaction():
            return tokens.revoke(conn, name)

    row = await hub.write(run)
    return JSONResponse(token_json(row))


@router.delete(
    "/tokens/{name}", summary="Same as POST .../revoke", responses=error_responses(401, 403, 404)
)
async def delete_token(hub: HubDep, name: str) -> JSONResponse:
    """Revoking keeps the row, so the audit log can still name the token."""
    return await revoke_token(hub, name)


@router.get(
    "/audit",
    summary="The audit log of management calls, newest first (read only)",
    responses=error_responses(400, 401, 403),
)
async def audit_log(
    hub: HubDep,
    period: PeriodDep,
    actor: str | None = None,
    action: str | None = None,
    via: str | None = None,
    cursor: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Filter by token name, action substring, via (api, dashboard, cli) and time."""
    lo, hi = period.since, period.until
    rows, last = page(
        await hub.read(lambda c: audit.query(c, actor, action, via, lo, hi, cursor, limit + 1)),
        limit,
    )
    return JSONResponse({"entries": rows, "next_cursor": last["id"] if last else None})
