"""Double opt-in confirmation pages (no admin token; the signed, expiring link is the credential).

GET  /confirm/{token}    asks the person to confirm (mail scanners prefetch GETs: no change)
POST /confirm/{token}    confirms: "subscribed", reason double_opt_in (the person's own)
"""

from __future__ import annotations

import hashlib
import html

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from engagehub.api.deps import HubDep
from engagehub.consent import store as consent
from engagehub.errors import EngagehubError
from engagehub.hub import Hub
from engagehub.ingest.body import read_body
from engagehub.messaging import links
from engagehub.messaging.double_opt_in import confirm_change, verify
from engagehub.messaging.recipient_pages import _error_page, _page
from engagehub.timeutil import now_ms

router = APIRouter(tags=["messaging: recipient pages"])


def _what(who: links.Recipient) -> str:
    kind = "emails" if who.channel == "email" else "messages"
    return f"{who.group} {kind}" if who.group else f"{kind} from us"


async def _who(hub: Hub, token: str) -> links.Recipient:
    key = await hub.read(lambda c: links.secret_key(c, hub.settings))
    return verify(key, token, now_ms(), hub.settings.double_opt_in_expiry_hours)


@router.get("/confirm/{token}", include_in_schema=False)
async def confirm_page(hub: HubDep, token: str) -> HTMLResponse:
    """A button that confirms; the GET itself changes nothing."""
    try:
        who = await _who(hub, token)
    except EngagehubError as exc:
        return _error_page(exc)
    return _page(
        "Confirm your subscription",
        f"<p>Receive {html.escape(_what(who))} at <b>{html.escape(who.contact)}</b>?</p>"
        "<form method='post'><button type='submit'>Yes, subscribe me</button></form>",
    )


@router.post("/confirm/{token}", include_in_schema=False)
async def confirm(hub: HubDep, token: str, request: Request) -> HTMLResponse:
    """Apply the confirmation (once: the same link confirms the same way again)."""
    try:
        who = await _who(hub, token)
    except EngagehubError as exc:
        return _error_page(exc)
    await read_body(request, 64 * 1024)
    now = now_ms()
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    event = consent.change_event(confirm_change(who), now, f"doiok:{digest}")
    builtin = await hub.read(consent.builtin_source_id)
    result = await hub.append(builtin, [event], now)
    await hub.caught_up(result.head, ["consent"])
    return _page(
        "Subscribed",
        f"<p>Thank you: {html.escape(who.contact)} will receive {html.escape(_what(who))}.</p>",
    )
