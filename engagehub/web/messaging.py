"""Dashboard page ``/messaging``: templates (editor with preview and test send), audiences with
their size, broadcasts (create, start, pause, resume, progress), journeys and goals.

Previews, sends and broadcast actions call the functions behind ``/api/templates``,
``/api/sends`` and ``/api/broadcasts``, so the page shows what the API would answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from engagehub.analytics import goals
from engagehub.consent.model import contact_for
from engagehub.errors import NotFound, PayloadError
from engagehub.hub import Hub
from engagehub.messaging import audiences, broadcasts, journeys, sender, templates
from engagehub.messaging.api import PreviewIn, preview, render_preview, send_json
from engagehub.messaging.delivery import send_now
from engagehub.storage.base import Connection
from engagehub.web.common import form_of, guarded, redirect, render

router = APIRouter(include_in_schema=False)
_PARTS = ("subject", "html", "text", "body")


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
        running = any(b["state"] == "running" for b in data["broadcasts"])
        return render(
            "messaging.html",
            csrf=sess["csrf"],
            notice=request.query_params.get("notice"),
            running=running,
            **data,
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

    return await guarded(request, page)


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
                    preview(conn, hub, name, PreviewIn(profile=profile or None, strict=False)),
                    None,
                )
            except NotFound as exc:  # the test profile
                return tpl, None, exc.message

        tpl, shown, error = await hub.read(run)
        notice = request.query_params.get("notice")
        return _editor(request, sess, tpl, profile, shown, error, notice)

    return await guarded(request, page)


@router.post("/messaging/templates/{name}")
async def template_action(request: Request, name: str) -> Response:
    """``save`` the source, ``preview`` it unsaved, or ``test`` send the saved template."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        action = form.get("action", "preview")
        profile = form.get("profile", "").strip()
        if action == "test":
            return await _test_send(hub, name, form.get("to", ""), profile)
        draft = {"name": name, **{k: form.get(k) for k in ("channel", "kind", *_PARTS)}}
        try:
            tpl = _submitted(form, name)
        except PayloadError as exc:
            return _editor(request, sess, draft, profile, None, exc.message, status=400)
        if action == "save":
            await hub.read(lambda c: templates.save(c, tpl))
            query = urlencode({"notice": "template saved", "profile": profile})
            return redirect(f"/messaging/templates/{quote(name, safe='')}?{query}")

        def draft_preview(conn: Connection) -> dict[str, Any]:
            return render_preview(conn, hub, tpl, PreviewIn(profile=profile or None, strict=False))

        try:
            shown = await hub.read(draft_preview)
        except NotFound as exc:
            return _editor(request, sess, draft, profile, None, exc.message, status=404)
        return _editor(request, sess, {**tpl.model_dump(), "draft": True}, profile, shown)

    return await guarded(request, page)


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

    mid = await hub.read(queue)
    await send_now(hub.db, hub.settings, mid)
    result = await hub.read(lambda c: send_json(c, mid))
    notice = f"test send to {result['contact']}: {result['state']}"
    if result["error"]:
        notice += f" ({result['error']})"
    query = urlencode({"notice": notice, "profile": profile})
    return redirect(f"/messaging/templates/{quote(name, safe='')}?{query}")


@router.post("/messaging/broadcasts")
async def create_broadcast(request: Request) -> Response:
    """A draft broadcast (template × audience at a rate)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        try:
            b = broadcasts.BroadcastIn(
                name=form.get("name", ""),
                template=form.get("template", ""),
                audience=form.get("audience", ""),
                rate_per_second=float(form.get("rate_per_second") or 100),
            )
        except (ValidationError, ValueError) as exc:
            raise PayloadError(f"invalid broadcast: {exc}", field="broadcast") from None
        await hub.read(lambda c: broadcasts.create(c, b))
        return redirect(f"/messaging?notice={quote('broadcast ' + b.name + ' created')}#broadcasts")

    return await guarded(request, page)


@router.post("/messaging/broadcasts/{name}/{action}")
async def broadcast_action(request: Request, name: str, action: str) -> Response:
    """``start``, ``pause`` or ``resume``, as ``POST /api/broadcasts/{name}/{action}``."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        await form_of(request, sess)
        if action == "start":
            await hub.read(lambda c: broadcasts.start(c, name))
        elif action in ("pause", "resume"):
            target = "paused" if action == "pause" else "running"
            await hub.read(lambda c: broadcasts.set_state(c, name, target))
        else:
            raise PayloadError(f"unknown action {action!r}", field="action", value=action)
        hub.services.wake("messaging")
        done = {"start": "started", "pause": "paused", "resume": "resumed"}[action]
        return redirect(f"/messaging?notice={quote(f'broadcast {name} {done}')}#broadcasts")

    return await guarded(request, page)
