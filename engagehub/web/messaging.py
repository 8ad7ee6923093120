"""Dashboard page ``/messaging``: templates (editor with preview and test send), audiences with
their size, broadcasts (create, start, pause, resume, progress), journeys and goals.

Previews, sends and broadcast actions call the functions behind ``/api/templates``,
``/api/sends`` and ``/api/broadcasts``, so the page shows what the API would answer.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from engagehub.analytics import goals, service
from engagehub.analytics.api import settled
from engagehub.consent.model import contact_for
from engagehub.errors import NotFound, PayloadError
from engagehub.hub import Hub
from engagehub.messaging import audiences, broadcasts, journeys, sender, templates
from engagehub.messaging.delivery import send_now
from engagehub.messaging.preview import PreviewIn, preview, render_preview, send_json
from engagehub.storage.base import Connection
from engagehub.web.common import alert, form_of, guarded, redirect, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)
_PARTS = ("subject", "html", "text", "body")
_IN_FLIGHT = ("pending", "sending", "handed")
_TEST_SEND_POLLS = 100  # 10 s: the page then says "sending" and the send goes on


def _overview(conn: Connection) -> dict[str, Any]:
    auds = []
    for a in audiences.list_all(conn):
        aud = audiences.load(conn, a["name"])
        auds.append({**a, "size": len(audiences.members(conn, aud))})
    steps = conn.all(
        "SELECT journey, step, COUNT(*) AS n FROM journey_runs WHERE state = 'active' "
        "GROUP BY journey, step ORDER BY journey, step"
    )
    js = []
    for j in journeys.all_journeys(conn):
        found = journeys.describe(conn, j.name)
        found["at_step"] = [(int(r["step"]), int(r["n"])) for r in steps if r["journey"] == j.name]
        js.append(found)
    return {
        "templates": templates.list_all(conn),
        "audiences": auds,
        "broadcasts": broadcasts.list_all(conn),
        "journeys": js,
        "goals": [g.public() for g in goals.load(conn)],
    }


@router.get("/messaging")
async def messaging_page(request: Request) -> Response:
    """Templates, audiences, broadcasts with progress, journeys and goals."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        data = await hub.read(_overview)
        running = any(b["state"] in ("running", "scheduled") for b in data["broadcasts"])
        lists = {
            "templates": fields("name", "channel", "kind", "subscription_group"),
            "audiences": fields("name", "channel"),
            "broadcasts": fields("name", "template", "audience", "state"),
            "journeys": fields("name", "trigger", "goal"),
            "goals": fields("id", "campaign_id", "event", "where"),
        }
        shown: dict[str, Any] = {k: listing(request, k, data[k], t) for k, t in lists.items()}
        return render(
            "messaging.html",
            csrf=sess["csrf"],
            notice=request.query_params.get("notice"),
            alert=alert(request),
            running=running,
            all_templates=data["templates"],
            all_audiences=data["audiences"],
            **shown,
        )

    return await guarded(request, page)


def _submitted(form: dict[str, str], name: str) -> templates.TemplateIn:
    """The editor's form as a template; errors name the field."""
    fields: dict[str, Any] = {
        "name": name,
        "channel": form.get("channel", "email"),
        "kind": form.get("kind", "marketing"),
        "subscription_group": form.get("subscription_group", ""),
    }
    for part in _PARTS:
        if form.get(part, "").strip():
            fields[part] = form[part]
    try:
        tpl = templates.TemplateIn.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "template"
        raise PayloadError(f"invalid {field}: {first['msg']}", field=field) from None
    templates.check_syntax(tpl)
    return tpl


def _editor(
    request: Request,
    sess: dict[str, Any],
    tpl: dict[str, Any],
    profile: str,
    shown: dict[str, Any] | None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        "template_editor.html",
        status,
        csrf=sess["csrf"],
        tpl=tpl,
        profile=profile,
        preview=shown,
        error=error,
        notice=notice,
    )


@router.post("/messaging/templates")
async def new_template(request: Request) -> Response:
    """Open the editor for a new template of a channel."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        name = form.get("name", "").strip()
        if not name:
            raise PayloadError("name the template", field="name")
        channel = "sms" if form.get("channel") == "sms" else "email"
        return redirect(f"/messaging/templates/{quote(name, safe='')}?channel={channel}")

    return await guarded(request, page, "/messaging")


@router.get("/messaging/templates/{name}")
async def template_page(request: Request, name: str) -> Response:
    """The editor: the source on one side, the preview with a test profile's traits on the other."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        profile = (request.query_params.get("profile") or "").strip()
        channel = request.query_params.get("channel") or "email"

        def run(conn: Connection) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
            try:
                tpl = templates.load(conn, name).model_dump()
            except NotFound:
                return (
                    {"name": name, "channel": channel, "kind": "marketing", "new": True},
                    None,
                    None,
                )
            try:
                return (
                    tpl,
                    preview(
                        conn, hub.settings, name, PreviewIn(profile=profile or None, strict=False)
                    ),
                    None,
                )
            except NotFound as exc:  # the test profile
                return tpl, None, exc.message

        tpl, shown, error = await hub.read(run)
        notice = request.query_params.get("notice")
        return _editor(request, sess, tpl, profile, shown, error or alert(request), notice)

    return await guarded(request, page)


@router.post("/messaging/templates/{name}")
async def template_action(request: Request, name: str) -> Response:
    """``save`` the source or ``test`` send the saved template (``preview`` previews)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        action = form.get("action", "preview")
        profile = form.get("profile", "").strip()
        if action == "test":
            return await _test_send(hub, name, form.get("to", ""), profile)
        if action != "save":
            return await _draft_preview(request, hub, sess, name, form)
        try:
            tpl = _submitted(form, name)
        except PayloadError as exc:
            return _editor(
                request, sess, _draft(form, name), profile, None, exc.message, status=400
            )
        await hub.write(lambda c: templates.save(c, tpl))
        query = urlencode({"notice": "template saved", "profile": profile})
        return redirect(f"/messaging/templates/{quote(name, safe='')}?{query}")

    return await guarded(request, page, _editor_url(name))


@router.post("/messaging/templates/{name}/preview")
async def template_preview(request: Request, name: str) -> Response:
    """The editor with the unsaved draft rendered: the Preview button and the live preview
    (``app.js`` posts the form here while the user types). Any signed-in scope may preview."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        return await _draft_preview(request, hub, sess, name, await form_of(request, sess))

    return await guarded(request, page)


def _editor_url(name: str) -> str:
    return f"/messaging/templates/{quote(name, safe='')}"


def _draft(form: dict[str, str], name: str) -> dict[str, Any]:
    return {"name": name, **{k: form.get(k) for k in ("channel", "kind", *_PARTS)}}


async def _draft_preview(
    request: Request, hub: Hub, sess: dict[str, Any], name: str, form: dict[str, str]
) -> Response:
    """The editor showing the draft rendered, or what is wrong with it (a 200 either way: the
    page is the preview, and a half-typed draft or test profile is not a failed request)."""
    profile = form.get("profile", "").strip()
    try:
        tpl = _submitted(form, name)
    except PayloadError as exc:
        return _editor(request, sess, _draft(form, name), profile, None, exc.message)

    def draft_preview(conn: Connection) -> dict[str, Any]:
        return render_preview(
            conn, hub.settings, tpl, PreviewIn(profile=profile or None, strict=False)
        )

    try:
        shown = await hub.read(draft_preview)
    except NotFound as exc:
        return _editor(request, sess, _draft(form, name), profile, None, exc.message)
    return _editor(request, sess, {**tpl.model_dump(), "draft": True}, profile, shown)


async def _test_send(hub: Hub, name: str, to: str, profile: str) -> Response:
    """A test send (subject marked [TEST], no consent check), as ``POST /api/sends`` test=true."""

    def queue(conn: Connection) -> str:
        tpl = templates.load(conn, name)
        try:
            address = contact_for(tpl.channel, to, hub.settings.default_region)
        except PayloadError as exc:
            raise PayloadError(exc.message, field="to", value=to) from None
        with conn.transaction():
            return sender.enqueue(
                conn,
                tpl.name,
                tpl.channel,
                address,
                {"event": {}, "data": {}, "test": True},
                transactional=True,
            )

    mid = await hub.write(queue)
    result: dict[str, Any] = {}
    if await send_now(hub.db, hub.settings, mid) is None:  # the messaging service took it
        for _ in range(_TEST_SEND_POLLS):
            result = await hub.read(lambda c: send_json(c, mid))
            if result["state"] not in _IN_FLIGHT:
                break
            await asyncio.sleep(0.1)
    result = await hub.read(lambda c: send_json(c, mid))
    notice = f"test send to {result['contact']}: {result['state']}"
    if result["error"]:
        notice += f" ({result['error']})"
    query = urlencode({"notice": notice, "profile": profile})
    return redirect(f"/messaging/templates/{quote(name, safe='')}?{query}")


@router.post("/messaging/broadcasts")
async def create_broadcast(request: Request) -> Response:
    """A draft broadcast (template × audience at a rate), scheduled when a start time is given."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        try:
            b = broadcasts.BroadcastIn(
                name=form.get("name", ""),
                template=form.get("template", ""),
                audience=form.get("audience", ""),
                rate_per_second=float(form.get("rate_per_second") or 100),
                start_at=form.get("start_at", "").strip() or None,
            )
        except (ValidationError, ValueError) as exc:
            raise PayloadError(f"invalid broadcast: {exc}", field="broadcast") from None
        found = await hub.write(lambda c: broadcasts.create(c, b))
        when = f" for {found['scheduled_at']}" if found["scheduled_at"] else " (draft)"
        notice = quote(f"broadcast {b.name} created{when}")
        return redirect(f"/messaging?notice={notice}#broadcasts")

    return await guarded(request, page, "/messaging#broadcasts")


@router.post("/messaging/broadcasts/{name}/{action}")
async def broadcast_action(request: Request, name: str, action: str) -> Response:
    """``schedule`` (at the posted UTC time), ``start``, ``pause``, ``resume`` or
    ``unschedule``: the functions behind ``POST /api/broadcasts/{name}/...``."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        if action == "schedule":
            at = form.get("at", "").strip()
            if not at:
                raise PayloadError("when should it start?", field="at")
            found = await hub.write(lambda c: broadcasts.schedule(c, name, at))
        else:
            found = await hub.write(lambda c: broadcasts.act(c, name, action))
        hub.services.wake("messaging")
        done = {"start": "started", "pause": "paused", "resume": "resumed"}.get(action)
        if found["state"] == "scheduled":
            done = f"scheduled for {found['scheduled_at']}"
        elif action == "unschedule":
            done = "is a draft again"
        return redirect(f"/messaging?notice={quote(f'broadcast {name} {done}')}#broadcasts")

    return await guarded(request, page, "/messaging#broadcasts")


@router.post("/messaging/goals")
async def add_goal(request: Request) -> Response:
    """A new conversion goal, as ``POST /api/goals`` (goal events already logged count)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        goal = _goal_form(await form_of(request, sess))
        await settled(hub)
        made = await hub.write(lambda c: service.add_goal(c, *goal))
        notice = f"goal {made['id']} added ({made['backfilled_events']} goal events already logged)"
        return redirect(f"/messaging?notice={quote(notice)}#goals")

    return await guarded(request, page, "/messaging#goals")


@router.post("/messaging/goals/{goal}")
async def goal_action(request: Request, goal: str) -> Response:
    """``save`` an edited goal (``PUT /api/goals/{id}``) or ``delete`` it."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        if not goal.isascii() or not goal.isdigit() or len(goal) > 18:
            raise NotFound(f"no goal {goal!r}", goal_id=goal)
        goal_id = int(goal)
        if form.get("action") == "delete":
            await hub.write(lambda c: service.remove_goal(c, goal_id))
            notice = f"goal {goal_id} deleted"
        else:
            definition = _goal_form(form)
            await settled(hub)
            await hub.write(lambda c: service.change_goal(c, goal_id, *definition))
            notice = f"goal {goal_id} saved"
        return redirect(f"/messaging?notice={quote(notice)}#goals")

    return await guarded(request, page, "/messaging#goals")


def _goal_form(form: dict[str, str]) -> tuple[str, str, str | None, str]:
    """(campaign, event, where, within) of a goal form, checked like the API's body."""
    goal = (
        form.get("campaign", "").strip(),
        form.get("event", "").strip(),
        form.get("where", "").strip() or None,
        form.get("within", "").strip() or "72h",
    )
    goals.validate(*goal)
    return goal
