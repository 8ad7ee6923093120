"""Recipient-facing pages (no admin token; the signed link is the credential).

    GET  /unsubscribe/{token}    confirmation page (mail scanners prefetch GETs: no change)
    POST /unsubscribe/{token}    RFC 8058 one-click (``List-Unsubscribe=One-Click``) or the button
    GET  /preferences/{token}    channel and group choices, a form with a CSRF token
    POST /preferences/{token}    apply the choices

Every change is a "Channel/Group Subscription Updated" event (reason ``link`` or
``preferences``) appended under the built-in source, applied by the consent processor.
"""

from __future__ import annotations

import html
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from engagehub.api.deps import HubDep
from engagehub.classify import click_reason
from engagehub.consent import store as consent
from engagehub.consent.model import NO_STATUS, Change
from engagehub.errors import EngagehubError
from engagehub.hub import Hub
from engagehub.ingest.body import read_body
from engagehub.messaging import links, templates
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms
from engagehub.vendors.common import form_body

router = APIRouter(tags=["messaging: recipient pages"])
_STYLE = "body{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<meta name='viewport' content='width=device-width'><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers={"Cache-Control": "no-store"})


def _error_page(exc: EngagehubError) -> HTMLResponse:
    return _page("Link not valid", f"<p>{html.escape(exc.message)}</p>", exc.http_status)


async def _recipient(hub: Hub, token: str) -> tuple[bytes, links.Recipient]:
    key = await hub.read(lambda c: links.secret_key(c, hub.settings))
    return key, links.verify(key, token)


def _machine(request: Request, form: dict[str, str], key: bytes, token: str) -> str | None:
    """Why this POST looks like a link scanner's (its user agent), unless it carries a valid
    confirmation from our own confirmation page."""
    if form.get("confirm"):
        try:
            links.check_csrf(key, token, form["confirm"], now_ms())
            return None
        except EngagehubError:
            pass
    return click_reason({"user_agent": request.headers.get("user-agent", "")})


async def _apply(hub: Hub, changes: list[Change], **extra: str) -> None:
    """Append the changes and wait until the consent processor applied them."""
    if not changes:
        return
    builtin = await hub.read(consent.builtin_source_id)
    now = now_ms()
    call = uuid.uuid4().hex
    events = [
        consent.change_event(c, now, f"page:{call}:{n}", **extra) for n, c in enumerate(changes)
    ]
    result = await hub.append(builtin, events, now)
    await hub.caught_up(result.head, ["consent"])


def _what(who: links.Recipient) -> str:
    kind = "emails" if who.channel == "email" else "text messages"
    return f"{who.group} {kind}" if who.group else f"all marketing {kind}"


@router.get("/unsubscribe/{token}", include_in_schema=False)
async def unsubscribe_page(hub: HubDep, token: str) -> HTMLResponse:
    """Ask for confirmation; a GET never changes anything."""
    try:
        _, who = await _recipient(hub, token)
    except EngagehubError as exc:
        return _error_page(exc)
    form = (
        f"<p>Unsubscribe <b>{html.escape(who.contact)}</b> from {html.escape(_what(who))}?</p>"
        "<form method='post'><input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe</button></form>"
        f"<p><a href='../preferences/{html.escape(token)}'>Manage preferences</a></p>"
    )
    return _page("Unsubscribe", form)


@router.post("/unsubscribe/{token}", include_in_schema=False)
async def unsubscribe(hub: HubDep, token: str, request: Request) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058): the signed token alone authorizes it."""
    try:
        key, who = await _recipient(hub, token)
    except EngagehubError as exc:
        return _error_page(exc)
    body = await read_body(request, 64 * 1024)
    try:
        form = dict(form_body(body))
    except EngagehubError:
        form = {}
    change = Change(who.contact, who.channel, "unsubscribed", who.group, "link")
    robot = _machine(request, form, key, token)
    policy = hub.settings.consent_machine_unsubscribe_policy
    if robot is not None and policy != "apply":
        await _apply(hub, [change], machine_reason=robot)  # recorded, held by consent
        if policy == "record":
            return _page("Not unsubscribed", "<p>This request looked automated.</p>", 202)
        confirm = links.csrf_token(key, token, now_ms())
        return _page(
            "Confirm unsubscribe",
            f"<p>Unsubscribe <b>{html.escape(who.contact)}</b> from {html.escape(_what(who))}?</p>"
            "<form method='post'><input type='hidden' name='List-Unsubscribe' value='One-Click'>"
            f"<input type='hidden' name='confirm' value='{html.escape(confirm)}'>"
            "<button type='submit'>Yes, unsubscribe</button></form>",
            202,
        )
    await _apply(hub, [change])
    return _page(
        "Unsubscribed",
        f"<p>{html.escape(who.contact)} will no longer receive {html.escape(_what(who))}.</p>",
    )


def _choices(conn: Connection, who: links.Recipient) -> list[tuple[str, str]]:
    """(group name or "" for the channel, current status) shown on the page."""
    names = dict.fromkeys(["", *templates.groups(conn)])
    if who.group:
        names[who.group] = None
    states = {
        (s["group"] or ""): s["status"]
        for s in consent.states_for(conn, [who.contact])
        if s["channel"] == who.channel
    }
    names.update(dict.fromkeys(g for g in states if g))
    return [(g, states.get(g, NO_STATUS)) for g in names]


@router.get("/preferences/{token}", include_in_schema=False)
async def preferences_page(hub: HubDep, token: str) -> HTMLResponse:
    """Checkboxes for the channel and each group, with a CSRF token bound to this link."""
    try:
        key, who = await _recipient(hub, token)
    except EngagehubError as exc:
        return _error_page(exc)
    choices = await hub.read(lambda c: _choices(c, who))
    rows = []
    for group, status in choices:
        name = f"group:{group}" if group else "channel"
        label = group or _what(links.Recipient(who.channel, who.contact))
        checked = " checked" if status == "subscribed" else ""
        rows.append(
            f"<p><label><input type='checkbox' name='{html.escape(name)}' value='on'{checked}> "
            f"{html.escape(label)}</label></p>"
        )
    csrf = links.csrf_token(key, token, now_ms())
    form = (
        f"<p>Choices for <b>{html.escape(who.contact)}</b>:</p><form method='post'>"
        f"<input type='hidden' name='csrf' value='{csrf}'>{''.join(rows)}"
        "<button type='submit'>Save</button></form>"
    )
    return _page("Subscription preferences", form)


@router.post("/preferences/{token}", include_in_schema=False)
async def save_preferences(hub: HubDep, token: str, request: Request) -> HTMLResponse:
    """Apply the form: each box that differs from the current state becomes a change."""
    try:
        key, who = await _recipient(hub, token)
        form = dict(form_body(await read_body(request, 64 * 1024)))
        links.check_csrf(key, token, form.get("csrf", ""), now_ms())
    except EngagehubError as exc:
        return _error_page(exc)
    choices = await hub.read(lambda c: _choices(c, who))
    changes: list[Change] = []
    for group, status in choices:
        wanted = form.get(f"group:{group}" if group else "channel") == "on"
        target = "subscribed" if wanted else "unsubscribed"
        if target != status and (wanted or status != "no_status"):
            changes.append(
                Change(
                    who.contact, who.channel, target, group, "preferences", allow_resubscribe=wanted
                )
            )
    await _apply(hub, changes)
    summary: list[Any] = [
        f"<li>{html.escape(c.group or who.channel)}: {c.status}</li>" for c in changes
    ]
    return _page(
        "Preferences saved",
        f"<ul>{''.join(summary) or '<li>No changes</li>'}</ul>"
        f"<p><a href='{html.escape(token)}'>Back</a></p>",
    )
