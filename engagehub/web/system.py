"""Dashboard page ``/system``: the ``GET /api/system`` document (lag, unmapped, settings)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.hub import Hub
from engagehub.ops.status import system_status
from engagehub.web.common import guarded, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)


@router.get("/system")
async def system_page(request: Request) -> Response:
    """Version, database, processor and follower lag, unmapped names, settings in force."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        status = await hub.read(lambda c: system_status(c, hub))
        return render(
            "system.html",
            csrf=sess["csrf"],
            s=status,
            lag=listing(request, "lag", status["lag"], fields("kind", "name"), 50),
            unmapped=listing(
                request, "unmapped", status["unmapped"], fields("vendor_event", "source")
            ),
            settings=listing(
                request, "settings", status["settings"], fields("env", "name", "value")
            ),
        )

    return await guarded(request, page)
