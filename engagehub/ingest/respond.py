"""The ingest answer: store the good events of a request, then acknowledge; never before.

Every ingest route answers here, in one style: ``{"success": true}`` (Segment's answer; webhook
routes add ``"accepted": n``), plus ``"accepted"`` and ``"rejected"`` when some events of a batch
were bad, or an error when none was good. A vendor that retries a 400 event by event (Braze)
declares ``partial="refuse"``: its good events are stored, then the answer is 400.
"""

from __future__ import annotations

from typing import Any, Literal

from engagehub.errors import PayloadTooLarge, ValidationFailed
from engagehub.http import JSONResponse
from engagehub.hub import Hub
from engagehub.model import ParseResult
from engagehub.storage.sanity import screen


async def store(
    hub: Hub,
    source_id: int,
    result: ParseResult,
    received_at: int,
    single: bool = False,
    partial: Literal["accept", "refuse"] = "accept",
    max_events: int | None = None,
) -> ParseResult:
    """Store the good events (after the log's sanity screen); raise the answer's error when the
    request must be refused. Returns what was stored and what was rejected."""
    total = len(result.events) + len(result.rejected)
    if max_events is not None and total > max_events:
        raise PayloadTooLarge(
            f"{total} events in one request; the limit is {max_events}",
            count=total,
            limit=max_events,
        )
    result = screen(result)
    if result.rejected and not result.events and partial == "accept":
        if single or len(result.rejected) == 1:
            raise result.rejected[0].error
        raise ValidationFailed(
            f"all {len(result.rejected)} events were rejected",
            rejected=[r.body() for r in result.rejected],
        )
    if result.events:
        await hub.append(source_id, result.events, received_at, screened=True)
    if result.rejected and partial == "refuse":
        raise ValidationFailed(
            f"{len(result.rejected)} of {total} events were rejected; the others are stored",
            accepted=len(result.events),
            rejected=[r.body() for r in result.rejected],
        )
    return result


def answer(result: ParseResult, count: bool = False, status: int = 200) -> JSONResponse:
    """The acknowledgement of stored events (``count``: always say how many)."""
    payload: dict[str, Any] = {"success": True}
    if count or result.rejected:
        payload["accepted"] = len(result.events)
    if result.rejected:
        payload["rejected"] = [r.body() for r in result.rejected]
    return JSONResponse(payload, status_code=status)


async def commit(
    hub: Hub, source_id: int, result: ParseResult, received_at: int, single: bool, status: int = 200
) -> JSONResponse:
    """Store the good events, then answer; refuse outright when nothing was good."""
    stored = await store(hub, source_id, result, received_at, single)
    return answer(stored, status=status)
