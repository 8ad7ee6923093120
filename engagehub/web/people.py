"""Dashboard pages of people: ``/profiles/{identifier}`` (identities, traits, subscriptions,
latest events) and the search form ``/lookup`` (a message id or a profile identifier)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.access import audit
from engagehub.hub import Hub
from engagehub.profiles import store as profile_store
from engagehub.web.common import form_of, guarded, redirect, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)


@router.post("/lookup")
async def lookup(request: Request) -> Response:
    """The search form: a message id or a profile identifier."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        audit.skip(request)  # navigation, not a change
        form = await form_of(request, sess)
        kind = "profiles" if form.get("kind") == "profile" else "messages"
        return redirect(f"/{kind}/{quote(form.get('q', '').strip(), safe='')}")

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
