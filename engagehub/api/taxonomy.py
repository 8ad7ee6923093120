"""``GET /api/taxonomy``: canonical events and every vendor name mapped to each."""

from __future__ import annotations

from engagehub.api.routing import admin_router
from engagehub.http import JSONResponse, error_responses
from engagehub.taxonomy import get_taxonomy

router = admin_router("taxonomy")


@router.get("/taxonomy", summary="The canonical taxonomy", responses=error_responses(401))
async def taxonomy() -> JSONResponse:
    """Canonical events (channel x action), canonical properties, vendor names per event."""
    return JSONResponse(get_taxonomy().as_dict())
