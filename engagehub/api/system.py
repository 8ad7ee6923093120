"""Unauthenticated probes: ``/healthz`` (process up) and ``/readyz`` (database reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from engagehub import __version__
from engagehub.errors import TransientError
from engagehub.http import JSONResponse, error_responses
from engagehub.hub import Hub
from engagehub.storage import events as log

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> JSONResponse:
    """The process answers."""
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz", summary="Readiness", responses=error_responses(503))
async def readyz(request: Request) -> JSONResponse:
    """The database answers and the writer runs."""
    hub: Hub = request.app.state.hub
    if not hub.started:
        raise TransientError("not started")
    head = await hub.read(log.head)
    return JSONResponse({"status": "ready", "log_head": head})
