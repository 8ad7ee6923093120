"""``GET /api/taxonomy``: canonical events and every vendor name mapped to each."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from engagehub.api.auth import require_admin
from engagehub.http import JSONResponse, error_responses
from engagehub.taxonomy import get_taxonomy

router = APIRouter(prefix="/api", tags=["taxonomy"], dependencies=[Depends(require_admin)])


@router.get("/taxonomy", summary="The canonical taxonomy", responses=error_responses(401))
async def taxonomy() -> JSONResponse:
    """Canonical events (channel x action), canonical properties, vendor names per event."""
    return JSONResponse(get_taxonomy().as_dict())
