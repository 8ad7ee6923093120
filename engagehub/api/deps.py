"""Typed FastAPI dependencies of the routes: the process's Hub, so no route reads app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engagehub.hub import Hub


def hub_of(request: Request) -> Hub:
    """The Hub ``app.create_app`` was given, for helpers that only hold the request."""
    hub: Hub = request.app.state.hub
    return hub


async def _current_hub(request: Request) -> Hub:
    """Dependency form of ``hub_of`` (async: no threadpool hop on the ingest path)."""
    return hub_of(request)


HubDep = Annotated[Hub, Depends(_current_hub)]
"""Route parameter ``hub: HubDep``: the running server's Hub, typed."""
