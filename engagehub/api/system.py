"""Unauthenticated probes: ``/healthz`` (process up) and ``/readyz`` (database reachable)."""

from __future__ import annotations

from fastapi import APIRouter

from engagehub import __version__
from engagehub.api.deps import HubDep
from engagehub.errors import TransientError
from engagehub.http import JSONResponse, error_responses
from engagehub.storage import events as log

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> JSONResponse:
    """The process answers."""
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz", summary="Readiness", responses=error_responses(503))
async def readyz(hub: HubDep) -> JSONResponse:
    """The database answers and the writer runs."""
    if not hub.started:
        raise TransientError("not started")
    head = await hub.read(log.head)
    return JSONResponse({"status": "ready", "log_head": head})
