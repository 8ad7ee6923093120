"""Dashboard pages at ``/``: login, campaigns, campaign stats, message, profile, live events.

Pages are rendered on the server from the same functions the API answers with, so the numbers
on a page are the API's. Every response carries a strict Content-Security-Policy (scripts only
from ``/static``); every form carries a CSRF token; state changes are POST only.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Query, Request
from markupsafe import Markup
from starlette.responses import Response

from engagehub.access import audit, tokens
from engagehub.access.tokens import Principal, token_hash
from engagehub.analytics import service, stats
from engagehub.analytics.api import settled
from engagehub.api.deps import HubDep
from engagehub.api.events import source_names
from engagehub.errors import PayloadError
from engagehub.eventjson import event_json
from engagehub.http import INT64_MAX, JSONResponse
from engagehub.hub import Hub
from engagehub.profiles import store as profile_store
from engagehub.security.identity import failed_authentication
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import parse_param
from engagehub.web import session
from engagehub.web.common import (
    STATIC,
    STATIC_TYPES,
    current,
    dashboard_secret,
    form_of,
    guarded,
    redirect,
    render,
)
from engagehub.web.listing import fields, listing, moved

router = APIRouter(include_in_schema=False)
_FUNNEL = [
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("opens_unique", "Unique opens"),
    ("clicks_unique", "Unique clicks"),
    ("conversions", "Conversions"),
]


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """Vendored Chart.js, the dashboard script and stylesheet."""
    body = STATIC.get(name)
    if body is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    media = STATIC_TYPES[name[name.rfind(".") :]]
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/login")
async def login_page(request: Request, error: str | None = None) -> Response:
    """The login form (double-submit CSRF cookie)."""
    token = secrets.token_urlsafe(24)
    response = render("login.html", login_csrf=token, csrf=None, error=error)
    session.set_cookie(response, request, session.LOGIN_CSRF, token, 3600)
    return response


@router.post("/login")
async def login(hub: HubDep, request: Request) -> Response:
    """Check the admin token; on success set the signed session cookie."""
    try:
        form = await form_of(request, None)
    except PayloadError:
        return await login_page(request, "Your login form expired; please try again.")
    given = token_hash(form.get("token", ""))
    who = await hub.read(lambda c: tokens.resolve(c, given, hub.admin_token_hash))
    if who is None:
        failed_authentication(request)  # a page for the browser, a failure for the limiter
        return await login_page(request, "That token is not valid.")
    request.state.principal = Principal(who.name, who.scope, who.token_hash, "dashboard")
    audit.annotate(request, action="dashboard login", target=who.name, params={"scope": who.scope})
    value, _ = session.issue(await dashboard_secret(request), who.token_hash, who.name)
    response = redirect("/")
    session.set_cookie(response, request, session.SESSION, value, session.MAX_AGE_S)
    response.delete_cookie(session.LOGIN_CSRF, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked)."""
    sess = await current(request)
    if sess is not None:
        try:
            await form_of(request, sess)
        except PayloadError:
            return redirect("/")
    response = redirect("/login")
    response.delete_cookie(session.SESSION, path="/")
    return response


@router.get("/")
async def campaigns_page(request: Request) -> Response:
    """Every campaign with its all-time totals."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        await settled(hub)
        data = await hub.read(stats.list_campaigns)
        shown = listing(request, "campaigns", data, fields("id", "name"))
        return render("campaigns.html", csrf=sess["csrf"], campaigns=shown)

    return await guarded(request, page)


def chart_json(s: dict[str, Any]) -> Markup:
    """Chart data as JSON safe inside a ``<script type="application/json">`` block."""
    points = s["series"]["points"]
    data = {
        "funnel": {
            "labels": [label for _, label in _FUNNEL],
            "values": [s["totals"][key] for key, _ in _FUNNEL],
        },
        "series": {
            "labels": [p["t"] for p in points],
            "datasets": [
                {"label": label, "values": [p[key] for p in points]} for key, label in _FUNNEL
            ],
        },
    }
    text = orjson.dumps(data).decode().replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))  # noqa: S704 - JSON with <, >, & escaped


@router.get("/campaigns/{campaign_id}")
async def campaign_page(request: Request, campaign_id: str) -> Response:
    """Totals, rates, funnel and series charts, links, bounces, conversions, breakdown."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        q = {k: request.query_params.get(k) or None for k in ("from", "to", "channel", "variation")}
        since, until = parse_param(q["from"], "from"), parse_param(q["to"], "to")
        await settled(hub)

        def run(conn: Connection) -> dict[str, Any]:
            return stats.campaign_stats(
                conn, campaign_id, since, until, q["channel"], q["variation"]
            )

        s = await hub.read(run)
        lists: dict[str, Any] = {
            "links": listing(request, "links", s["top_links"], fields("url")),
            "bounces": listing(request, "bounces", s["bounce_reasons"], fields("reason")),
            "goals": listing(request, "goals", s["goals"], fields("id", "event", "where")),
            "breakdown": listing(
                request, "breakdown", s["breakdown"], fields("channel", "variation", "step")
            ),
        }
        return render(
            "campaign.html", csrf=sess["csrf"], s=s, q=q, chart_json=chart_json(s), **lists
        )

    return await guarded(request, page)


@router.post("/campaigns/{campaign_id}/filter")
async def campaign_filter(request: Request, campaign_id: str) -> Response:
    """The filter form: redirect to the campaign page with the filters in its query."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        audit.skip(request)  # navigation, not a change
        form = await form_of(request, sess)
        query = {k: form[k] for k in ("from", "to", "channel", "variation") if form.get(k)}
        suffix = f"?{urlencode(query)}" if query else ""
        return redirect(f"/campaigns/{quote(campaign_id, safe='')}{suffix}")

    return await guarded(request, page)


@router.post("/lookup")
async def lookup(request: Request) -> Response:
    """The search form: a message id or a profile identifier."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        audit.skip(request)  # navigation, not a change
        form = await form_of(request, sess)
        kind = "profiles" if form.get("kind") == "profile" else "messages"
        return redirect(f"/{kind}/{quote(form.get('q', '').strip(), safe='')}")

    return await guarded(request, page)


@router.get("/messages/{message_id:path}")
async def message_page(request: Request, message_id: str) -> Response:
    """A message's lifecycle and timeline."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        await settled(hub)
        m = await hub.read(lambda c: service.message_view(c, message_id))
        timeline = listing(
            request, "timeline", m["timeline"], fields("event", "vendor_event", "source"), 50
        )
        return render("message.html", csrf=sess["csrf"], m=m, timeline=timeline)

    return await guarded(request, page)


@router.get("/profiles/{identifier:path}")
async def profile_page(request: Request, identifier: str) -> Response:
    """Identities, traits, subscription states and history, latest events."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        region = hub.settings.default_region
        p = await hub.read(
            lambda c: profile_store.view(c, profile_store.find(c, identifier, region))
        )
        lists: dict[str, Any] = {
            "subscriptions": listing(
                request, "subscriptions", p["subscriptions"], fields("contact", "channel", "group")
            ),
            "history": listing(
                request,
                "history",
                p["subscription_history"],
                fields("contact", "channel", "group", "status", "reason"),
            ),
            "events": listing(
                request, "events", p["events"], fields("event", "vendor_event", "message_id"), 50
            ),
        }
        return render("profile.html", csrf=sess["csrf"], p=p, **lists)

    return await guarded(request, page)


def _latest(conn: Connection, after: int | None, limit: int = 50) -> list[dict[str, Any]]:
    q = (
        log.EventQuery(limit=limit, after_seq=after)
        if after is not None
        else log.EventQuery(limit=limit)
    )
    events, _ = log.query(conn, q)
    names = source_names(conn)
    out = [event_json(e, names, raw=True) for e in events]
    for e in out:
        e.pop("raw", None)
    return out


@router.get("/live")
async def live_page(request: Request) -> Response:
    """The latest events; the page script polls ``/live/events`` for new ones."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        events = await hub.read(lambda c: _latest(c, None))
        head = max((e["seq"] for e in events), default=0)
        return render("live.html", csrf=sess["csrf"], events=events, head=head)

    return await guarded(request, page)


@router.get("/live/events")
async def live_events(
    hub: HubDep, request: Request, after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0
) -> Response:
    """Events after a log position, oldest first (session cookie, not the API token)."""
    if await current(request) is None:
        return JSONResponse(
            {"error": {"code": "unauthorized", "message": "log in first", "details": {}}},
            status_code=401,
        )
    events = await hub.read(lambda c: _latest(c, after, 200))
    return JSONResponse({"events": events}, headers={"Cache-Control": "no-store"})


AUDIT_PAGE = 50
_AUDIT_FILTERS = ("actor", "action", "via")


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    """The audit log of management calls (admin tokens only)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        request.state.principal.require("admin", "the audit page")
        q = {k: (request.query_params.get(k) or "").strip()[:200] for k in _AUDIT_FILTERS}
        given = request.query_params.get("before") or ""
        before = int(given) if given.isascii() and given.isdigit() and len(given) < 19 else None

        def run(conn: Connection) -> list[dict[str, Any]]:
            return audit.query(
                conn,
                q["actor"] or None,
                q["action"] or None,
                q["via"] or None,
                before_id=before,
                limit=AUDIT_PAGE + 1,
            )

        entries = await hub.read(run)
        more = len(entries) > AUDIT_PAGE
        entries = entries[:AUDIT_PAGE]
        return render(
            "audit.html",
            csrf=sess["csrf"],
            entries=entries,
            q=q,
            next_href=moved(request, before=str(entries[-1]["id"])) if more else None,
            first_href=moved(request, before=None) if before is not None else None,
        )

    return await guarded(request, page)
