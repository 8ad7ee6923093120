"""Suppressions API: ``GET/PUT/DELETE /api/suppressions``, history, CSV import and export.

Writes become "Suppression Added/Removed" events under the built-in source; the answer waits
for the suppression processor, so a GET right after sees them.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Query, Request
from fastapi.responses import Response

from engagehub.api.deps import HubDep, hub_of
from engagehub.api.routing import admin_router
from engagehub.consent.store import builtin_source_id
from engagehub.errors import EngagehubError, PayloadError
from engagehub.http import JSONResponse, error_responses
from engagehub.hub import Hub
from engagehub.ingest.body import read_body
from engagehub.storage import keyset
from engagehub.storage.base import Connection
from engagehub.suppression import store
from engagehub.suppression.entries import (
    Entry,
    channel_of,
    forms,
    read_csv,
    validate,
    write_csv,
)
from engagehub.timeutil import now_ms

router = admin_router("suppressions")
MAX_ITEMS = 1000
MAX_IMPORT_BYTES = 64 * 1024 * 1024
_CHUNK = 5000


def _items(raw: bytes) -> list[dict[str, Any]]:
    """``{"suppressions": [...]}``, a list, or one object; each item an object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the body is not JSON: {exc}", field="body") from None
    items = body.get("suppressions") if isinstance(body, dict) else body
    if isinstance(body, dict) and items is None:
        items = [body]
    if not isinstance(items, list) or not items:
        raise PayloadError("give suppressions: a non-empty list of objects", field="suppressions")
    if len(items) > MAX_ITEMS:
        raise PayloadError(
            f"at most {MAX_ITEMS} suppressions per call, got {len(items)}",
            field="suppressions",
            value=len(items),
        )
    return items


async def apply_entries(hub: Hub, entries: list[tuple[int, Entry]], call: str) -> None:
    """Append the entries' events and wait until the suppression list shows them."""
    if not entries:
        return
    now = now_ms()
    events = [e.event(now, f"suppression:{call}:{i}") for i, e in entries]
    builtin = await hub.read(builtin_source_id)
    result = await hub.append(builtin, events, now)
    await hub.caught_up(result.head, ["suppression"])


async def _write(request: Request, adding: bool) -> JSONResponse:
    hub = hub_of(request)
    raw = await read_body(request, hub.settings.max_api_body_bytes)
    if not raw and not adding:
        raw = orjson.dumps(dict(request.query_params))
    entries: list[tuple[int, Entry]] = []
    failures: list[dict[str, Any]] = []
    for index, item in enumerate(_items(raw)):
        try:
            if not isinstance(item, dict):
                raise PayloadError("each suppression is an object", field="suppressions")
            entries.append((index, validate(item, hub.settings.default_region, adding)))
        except EngagehubError as exc:
            ref = item.get("contact") if isinstance(item, dict) else None
            failures.append({"index": index, "contact": ref, **exc.body()})
    call = request.headers.get("idempotency-key") or uuid.uuid4().hex
    await apply_entries(hub, entries, f"{'add' if adding else 'remove'}:{call}")
    successes = [
        {"index": i, "contact": e.contact, "channel": e.channel, "reason": e.reason}
        for i, e in entries
    ]
    return JSONResponse({"successes": successes, "failures": failures})


@router.put(
    "/suppressions",
    summary="Add contact points to the suppression list; per-item successes and failures",
    responses=error_responses(400, 401, 413),
)
async def put_suppressions(request: Request) -> JSONResponse:
    """Body: ``{"suppressions": [{contact, channel, reason?, detail?, expires_at?}]}``."""
    return await _write(request, adding=True)


@router.delete(
    "/suppressions",
    summary="Take contact points off the suppression list",
    responses=error_responses(400, 401, 413),
)
async def delete_suppressions(request: Request) -> JSONResponse:
    """Body ``{"suppressions": [{contact, channel}]}``, or ``?contact=&channel=``."""
    return await _write(request, adding=False)


@router.get(
    "/suppressions",
    summary="The suppression list (JSON pages, or CSV with format=csv)",
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}},
        **error_responses(400, 401),
    },
)
async def get_suppressions(
    hub: HubDep,
    channel: str | None = Query(default=None),
    reason: str | None = Query(default=None, max_length=40),
    contact: str | None = Query(default=None, max_length=320),
    include_expired: bool = Query(default=False),
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=100, ge=1, le=1000),
    format: str = Query(default="json", pattern="^(json|csv)$"),
) -> Response:
    """Entries in contact order; ``next_cursor`` continues; CSV returns every entry."""
    chan = channel_of(channel) if channel else None
    keys = forms(contact, chan, hub.settings.default_region) if contact is not None else None
    after = _cursor(cursor)
    now = now_ms()
    if format == "csv":
        text = write_csv(
            await hub.read(lambda conn: store.every(conn, now, chan, reason, keys, include_expired))
        )
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="suppressions.csv"'},
        )
    rows, last = keyset.page(
        await hub.read(
            lambda conn: store.listing(
                conn, now, chan, reason, keys, include_expired, after, limit + 1
            )
        ),
        limit,
    )
    nxt = f"{last['contact']}\t{last['channel']}" if last is not None else None
    return JSONResponse({"suppressions": rows, "next_cursor": nxt})


def _cursor(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    contact, sep, channel = value.rpartition("\t")
    if not sep:
        raise PayloadError(f"invalid cursor {value!r}", field="cursor", value=value)
    return contact, channel


@router.get(
    "/suppressions/history",
    summary="Every suppression signal of a contact point (audit)",
    responses=error_responses(400, 401),
)
async def get_history(
    hub: HubDep,
    contact: str = Query(min_length=1, max_length=320),
    limit: int = Query(default=200, ge=1, le=1000),
) -> JSONResponse:
    """Bounces, complaints, failures, operator entries and removals, newest first."""
    keys = forms(contact, None, hub.settings.default_region)

    def run(conn: Connection) -> list[dict[str, Any]]:
        return store.history(conn, sorted(keys), limit)

    return JSONResponse({"contact": contact, "history": await hub.read(run)})


@router.post(
    "/suppressions/import",
    summary="Import a suppression CSV (contact,channel,reason,detail,expires_at)",
    responses=error_responses(400, 401, 413),
)
async def import_suppressions(hub: HubDep, request: Request) -> JSONResponse:
    """Good rows are applied, bad ones reported with row number, field and value."""
    raw = await read_body(request, min(MAX_IMPORT_BYTES, hub.settings.max_upload_bytes))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the CSV is not UTF-8 (byte {exc.start})", field="body") from None
    call = request.headers.get("idempotency-key") or uuid.uuid4().hex
    now = now_ms()
    builtin = await hub.read(builtin_source_id)
    rejected: list[dict[str, Any]] = []
    pending = []
    applied = head = 0
    for number, got in read_csv(text, hub.settings.default_region):
        if isinstance(got, PayloadError):
            rejected.append({"row": number, **got.body()})
            continue
        pending.append(got.event(now, f"suppression:import:{call}:{number}"))
        if len(pending) >= _CHUNK:
            head = (await hub.append(builtin, pending, now)).head
            applied, pending = applied + len(pending), []
    if pending:
        head = (await hub.append(builtin, pending, now)).head
        applied += len(pending)
    if head:
        await hub.caught_up(head, ["suppression"])
    return JSONResponse({"applied": applied, "rejected": len(rejected), "errors": rejected[:1000]})
