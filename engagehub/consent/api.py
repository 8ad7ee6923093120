"""Subscriptions API: ``PUT /api/subscriptions`` (like Segment's "replace messaging
subscriptions"), ``GET /api/subscriptions?key=``, ``GET /api/subscriptions/history?contact=``."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Query, Request
from pydantic import BaseModel, Field

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.consent import store
from engagehub.consent.double_opt_in import DOI_PREFIX, RESENT, double_opt_in_request
from engagehub.consent.model import (
    PENDING,
    TYPES,
    Change,
    contact_for,
    contact_forms,
    resubscribe_refused,
    status_of,
)
from engagehub.errors import ConflictError, EngagehubError, PayloadError
from engagehub.http import JSONResponse, error_responses
from engagehub.ingest.body import body_as
from engagehub.model import IncomingEvent
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

router = admin_router("subscriptions")
MAX_ITEMS = 1000


class GroupIn(BaseModel):
    """One group of one subscription."""

    name: str = Field(min_length=1, max_length=200)
    status: str


class SubscriptionIn(BaseModel):
    """One contact point: its channel status and/or group statuses."""

    key: str = Field(min_length=1, max_length=320)
    type: str
    status: str | None = None
    groups: list[GroupIn] = Field(default_factory=list, max_length=100)


class ReplaceBody(BaseModel):
    """Body of ``PUT /api/subscriptions``."""

    subscriptions: list[SubscriptionIn] = Field(min_length=1, max_length=MAX_ITEMS)
    allow_resubscribe: bool = False
    """Let this call resubscribe people who unsubscribed themselves (use with their consent)."""
    double_opt_in: bool = False
    """Subscribes become ``pending`` until the person clicks the link of a confirmation message."""
    confirmation_template: str | None = Field(default=None, max_length=200)
    """Template of that message (default: setting ``double_opt_in_template``)."""


def item_changes(
    item: SubscriptionIn, region: str, allow: bool, double_opt_in: bool = False
) -> list[Change]:
    """Validate one item completely (nothing half-applied) and list its changes; with
    ``double_opt_in`` a subscribe asks for confirmation (``pending``) instead."""
    channel = TYPES.get(item.type.upper())
    if channel is None:
        raise PayloadError(
            f"unknown type {item.type!r}; expected one of {', '.join(TYPES)}",
            field="type",
            value=item.type,
        )
    contact = contact_for(channel, item.key, region)
    changes = []
    if item.status is not None:
        changes.append(Change(contact, channel, status_of(item.status), "", "api", allow))
    for group in item.groups:
        status = status_of(group.status, field="groups.status")
        changes.append(Change(contact, channel, status, group.name, "api", allow))
    if not changes:
        raise PayloadError("give a status or at least one group", field="status")
    return [double_opt_in_request(c) for c in changes] if double_opt_in else changes


def refused(conn: Connection, changes: list[Change]) -> Change | None:
    """The first change the own-action rule forbids, if any."""
    current = store.load_states(conn, ((c.contact, c.channel, c.group) for c in changes))
    for change in changes:
        cur = current.get((change.contact, change.channel, change.group))
        if resubscribe_refused(cur, change):
            return change
    return None


@router.put(
    "/subscriptions",
    summary="Set subscription states; per-item successes and failures",
    responses=error_responses(400, 401, 413),
)
async def replace_subscriptions(hub: HubDep, request: Request) -> JSONResponse:
    """Each valid item becomes consent events; the answer reflects their applied effect."""
    body = await body_as(request, ReplaceBody)
    region = hub.settings.default_region
    plans: list[tuple[int, SubscriptionIn, list[Change]]] = []
    failures: list[dict[str, Any]] = []
    for index, item in enumerate(body.subscriptions):
        try:
            changes = item_changes(item, region, body.allow_resubscribe, body.double_opt_in)
            plans.append((index, item, changes))
        except EngagehubError as exc:
            failures.append({"index": index, "key": item.key, "type": item.type, **exc.body()})

    def check(conn: Connection) -> tuple[int, list[int]]:
        blocked = []
        for index, item, changes in plans:
            bad = refused(conn, changes)
            if bad is not None:
                blocked.append(index)
                failures.append(
                    {
                        "index": index,
                        "key": item.key,
                        "type": item.type,
                        "error": {
                            "code": "resubscribe_refused",
                            "message": f"{bad.contact} unsubscribed by their own action; set "
                            "allow_resubscribe to override",
                            "details": {"channel": bad.channel, "group": bad.group or None},
                        },
                    }
                )
        return store.builtin_source_id(conn), blocked

    builtin, blocked = await hub.read(check)
    accepted = [p for p in plans if p[0] not in blocked]
    call = request.headers.get("idempotency-key") or uuid.uuid4().hex
    now = now_ms()
    template = {"confirmation_template": body.confirmation_template}
    events: list[IncomingEvent] = [
        store.change_event(change, now, f"{DOI_PREFIX}{call}:{index}:{n}", **template)
        if change.status == PENDING
        else store.change_event(change, now, f"api:{call}:{index}:{n}")
        for index, _, changes in accepted
        for n, change in enumerate(changes)
    ]
    if events:
        result = await hub.append(builtin, events, now)
        await hub.caught_up(result.head, ["consent"])
    successes = [
        {
            "index": index,
            "key": changes[0].contact,
            "type": item.type.upper(),
            "status": next((c.status for c in changes if not c.group), None),
            "groups": [{"name": c.group, "status": c.status} for c in changes if c.group],
        }
        for index, item, changes in accepted
    ]
    failures.sort(key=lambda f: f["index"])
    return JSONResponse({"successes": successes, "failures": failures})


def candidates(key: str, kind: str | None, region: str) -> list[str]:
    """Normal forms a lookup key may have (email, phone, or as given for push tokens)."""
    channels = (
        [TYPES[kind.upper()]]
        if kind and kind.upper() in TYPES
        else list(dict.fromkeys(TYPES.values()))
    )
    return contact_forms(key, channels, region)


@router.get(
    "/subscriptions",
    summary="Subscription states of a contact point",
    responses=error_responses(400, 401),
)
async def get_subscriptions(
    hub: HubDep,
    key: str = Query(min_length=1, max_length=320),
    type: str | None = Query(default=None, description="EMAIL, SMS, WHATSAPP, IOS_PUSH..."),
) -> JSONResponse:
    """Every channel and group state recorded for the key (no entry = no_status)."""
    if type is not None and type.upper() not in TYPES:
        raise PayloadError(f"unknown type {type!r}", field="type", value=type)
    keys = candidates(key, type, hub.settings.default_region)
    states = await hub.read(lambda conn: store.states_for(conn, keys))
    return JSONResponse({"key": key, "contacts": keys, "subscriptions": states})


@router.get(
    "/subscriptions/history",
    summary="Audit history of a contact point",
    responses=error_responses(400, 401),
)
async def get_history(
    hub: HubDep,
    contact: str = Query(min_length=1, max_length=320),
    limit: int = Query(default=200, ge=1, le=1000),
) -> JSONResponse:
    """What changed, when, from which source/event, and the previous state."""
    keys = candidates(contact, None, hub.settings.default_region)

    def run(conn: Connection) -> list[dict[str, Any]]:
        return store.history(conn, keys, limit)

    return JSONResponse({"contact": contact, "contacts": keys, "history": await hub.read(run)})


class ResendIn(BaseModel):
    """Body of ``POST /api/subscriptions/confirmations``."""

    key: str = Field(min_length=1, max_length=320)
    type: str
    group: str = Field(default="", max_length=200)
    confirmation_template: str | None = Field(default=None, max_length=200)


@router.post(
    "/subscriptions/confirmations",
    summary="Send a pending double opt-in's confirmation message again",
    responses=error_responses(400, 401, 404, 409),
)
async def resend_confirmation(hub: HubDep, request: Request) -> JSONResponse:
    """Only a ``pending`` subscription gets one; its expiry starts again from now."""
    body = await body_as(request, ResendIn)
    channel = TYPES.get(body.type.upper())
    if channel is None:
        raise PayloadError(f"unknown type {body.type!r}", field="type", value=body.type)
    contact = contact_for(channel, body.key, hub.settings.default_region)
    current = await hub.read(lambda c: store.status(c, contact, channel, body.group))
    if current != PENDING:
        raise ConflictError(
            f"{contact} is {current} on {channel}{' group ' + body.group if body.group else ''}; "
            "only a pending subscription can be confirmed",
            status=current,
        )
    change = double_opt_in_request(Change(contact, channel, "subscribed", body.group), RESENT)
    now = now_ms()
    event = store.change_event(
        change,
        now,
        f"{DOI_PREFIX}resend:{uuid.uuid4().hex}",
        confirmation_template=body.confirmation_template,
    )
    builtin = await hub.read(store.builtin_source_id)
    result = await hub.append(builtin, [event], now)
    await hub.caught_up(result.head, ["consent"])
    return JSONResponse({"key": contact, "type": body.type.upper(), "status": PENDING}, 202)
