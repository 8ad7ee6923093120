"""Dashboard page ``/suppressions``: the suppression list, add and remove (CSRF-checked POSTs)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.errors import PayloadError
from engagehub.hub import Hub
from engagehub.storage import keyset
from engagehub.suppression import store
from engagehub.suppression.api import apply_entries
from engagehub.suppression.entries import CHANNELS, channel_of, forms, validate
from engagehub.suppression.rules import REASONS
from engagehub.timeutil import now_ms
from engagehub.web.common import form_of, guarded, redirect, render
from engagehub.web.listing import moved

router = APIRouter(include_in_schema=False)
PAGE = 50


@router.get("/suppressions")
async def suppressions_page(
    request: Request,
    channel: str | None = None,
    reason: str | None = None,
    contact: str | None = None,
    after_contact: str | None = None,
    after_channel: str | None = None,
    notice: str | None = None,
) -> Response:
    """Suppressed contact points in (contact, channel) order, filterable by channel, reason and
    contact, paged by a keyset cursor (the table may hold millions)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        chan = channel_of(channel) if channel else None
        why = reason if reason in REASONS else None
        keys = forms(contact, chan, hub.settings.default_region) if contact else None
        after = (after_contact, after_channel or "") if after_contact else None
        now = now_ms()
        rows = await hub.read(
            lambda conn: store.listing(conn, now, chan, why, keys, False, after, PAGE + 1)
        )
        rows, last = keyset.page(rows, PAGE)
        return render(
            "suppressions.html",
            csrf=sess["csrf"],
            rows=rows,
            channels=CHANNELS,
            reasons=REASONS,
            channel=chan or "",
            reason=why or "",
            contact=contact or "",
            notice=notice,
            next_href=moved(request, after_contact=last["contact"], after_channel=last["channel"])
            if last
            else None,
            first_href=moved(request, after_contact=None, after_channel=None) if after else None,
        )

    return await guarded(request, page)


@router.post("/suppressions")
async def suppressions_post(request: Request) -> Response:
    """Add (``action=add``) or remove (``action=remove``) one contact point."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        adding = form.get("action") != "remove"
        try:
            entry = validate(form, hub.settings.default_region, adding)
        except PayloadError as exc:
            return redirect("/suppressions?" + urlencode({"notice": exc.message}))
        await apply_entries(hub, [(0, entry)], f"web:{secrets.token_hex(8)}")
        verb = "Suppressed" if adding else "Removed"
        notice = f"{verb} {entry.contact} ({entry.channel})."
        return redirect("/suppressions?" + urlencode({"notice": notice}))

    return await guarded(request, page)
