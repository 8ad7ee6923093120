"""Dashboard pages of campaigns: ``/`` (every campaign), ``/campaigns/{id}`` (stats, charts,
filters) and ``/messages/{id}`` (one message's lifecycle and timeline).

Pages are rendered on the server from the same functions the API answers with, so the numbers
on a page are the API's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import Response

from engagehub.access import audit
from engagehub.analytics import service, stats
from engagehub.analytics.api import settled
from engagehub.hub import Hub
from engagehub.storage.base import Connection
from engagehub.timeutil import parse_param
from engagehub.web.common import form_of, guarded, redirect, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)
_FUNNEL = [
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("opens_unique", "Unique opens"),
    ("clicks_unique", "Unique clicks"),
    ("conversions", "Conversions"),
]


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
