"""The ingest answer: store the good events of a request, then acknowledge; never before."""

from __future__ import annotations

from typing import Any

from engagehub.errors import ValidationFailed
from engagehub.http import JSONResponse
from engagehub.hub import Hub
from engagehub.model import ParseResult
from engagehub.storage.sanity import screen


async def commit(
    hub: Hub, source_id: int, result: ParseResult, received_at: int, single: bool, status: int = 200
) -> JSONResponse:
    """Store the good events, then answer; refuse outright when nothing was good."""
    result = screen(result)
    if result.rejected and not result.events:
        if single or len(result.rejected) == 1:
            raise result.rejected[0].error
        raise ValidationFailed(
            f"all {len(result.rejected)} events were rejected",
            rejected=[r.body() for r in result.rejected],
        )
    if result.events:
        await hub.append(source_id, result.events, received_at)
    payload: dict[str, Any] = {"success": True}
    if result.rejected:
        payload["accepted"] = len(result.events)
        payload["rejected"] = [r.body() for r in result.rejected]
    return JSONResponse(payload, status_code=status)
