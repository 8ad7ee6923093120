"""``GET /api/profiles/{id}``: a profile by profile id or any identifier."""

from __future__ import annotations

from typing import Any

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.http import JSONResponse, error_responses
from engagehub.profiles import store
from engagehub.storage.base import Connection

router = admin_router("profiles")


@router.get(
    "/profiles/{identifier}",
    summary="A profile by any identifier",
    responses=error_responses(401, 404),
)
async def get_profile(hub: HubDep, identifier: str) -> JSONResponse:
    """Identities, traits, subscription states and history, and the latest events."""

    def run(conn: Connection) -> dict[str, Any]:
        return store.view(conn, store.find(conn, identifier, hub.settings.default_region))

    return JSONResponse(await hub.read(run))
