"""The public double opt-in form: a page any site can link to or embed (no admin token).

    GET  /subscribe[?group=NAME]   the form (an email address; a group named by a template)
    POST /subscribe                a pending subscription and its confirmation message

Nothing is subscribed here: a submission becomes a ``pending`` request (``doi:`` event, reason
``double_opt_in_requested``) and the ``double_opt_in`` processor sends the confirmation; only
the person's click on its signed link subscribes them. Against anonymous abuse the form is
bounded: a per-address rate limit (``subscribe_form_rate_per_minute``), at most one request per
address and group every ``RESEND_MS`` (the dedup key), groups limited to those templates name,
a hidden field people never fill, a form token we signed, a small body. The answer is the same
page whatever the address's state (unknown, pending, subscribed, erased), so nobody can learn
from it who is subscribed. Email only: an SMS form would send paid messages to any number.
"""

from __future__ import annotations

import hashlib
import html

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from engagehub.api.deps import HubDep
from engagehub.consent import store as consent
from engagehub.consent.double_opt_in import DOI_PREFIX, REQUESTED, RESENT, double_opt_in_request
from engagehub.consent.model import PENDING, Change, contact_for
from engagehub.errors import EngagehubError
from engagehub.hub import Hub
from engagehub.ingest.body import read_body
from engagehub.messaging import links, templates
from engagehub.messaging.recipient_pages import _page
from engagehub.security.identity import client_address
from engagehub.security.ratelimit import RateLimiter
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms
from engagehub.vendors.common import form_body

router = APIRouter(tags=["messaging: recipient pages"])
RESEND_MS = 10 * 60 * 1000
"""One confirmation per address and group in this long, however often the form is sent."""
MAX_BODY = 8 * 1024
_FORM_KEY = "subscribe-form"
_TRAP = "website"  # hidden from people; form-filling bots fill it
_DONE = (
    "<p>Thank you. If this address can be subscribed, a message with a confirmation link is on "
    "its way: the subscription starts when you click it.</p>"
)


def _frame_headers(hub: Hub) -> dict[str, str]:
    """This page may be embedded (an iframe on the site that offers the newsletter)."""
    ancestors = hub.settings.subscribe_form_frame_ancestors
    return {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}",
        "X-Frame-Options": "SAMEORIGIN",  # ignored by browsers that read frame-ancestors
    }


def _form(key: bytes, group: str, error: str = "") -> str:
    token = links.csrf_token(key, _FORM_KEY, now_ms())
    what = f"the {html.escape(group)} emails" if group else "our emails"
    alert = f"<p role='alert'><b>{html.escape(error)}</b></p>" if error else ""
    return (
        f"<p>Subscribe to {what}. We will send you a link to confirm.</p>{alert}"
        "<form method='post' action='subscribe'>"
        f"<input type='hidden' name='form' value='{html.escape(token)}'>"
        f"<input type='hidden' name='group' value='{html.escape(group)}'>"
        "<p style='display:none' aria-hidden='true'><label>Leave empty "
        f"<input name='{_TRAP}' tabindex='-1' autocomplete='off'></label></p>"
        "<p><label for='email'>Email address</label><br>"
        "<input id='email' name='email' type='email' required maxlength='320' "
        "autocomplete='email'></p><button type='submit'>Subscribe</button></form>"
    )


def _groups(conn: Connection) -> set[str]:
    return {"", *templates.groups(conn)}


def _limiter(request: Request, hub: Hub) -> RateLimiter:
    found = getattr(request.app.state, "subscribe_limiter", None)
    if not isinstance(found, RateLimiter):
        per_minute = hub.settings.subscribe_form_rate_per_minute
        found = RateLimiter(per_minute / 60.0, max(1, int(per_minute)))
        request.app.state.subscribe_limiter = found
    return found


def _page_of(hub: Hub, title: str, body: str, status: int = 200) -> HTMLResponse:
    page = _page(title, body, status)
    page.headers.update(_frame_headers(hub))
    return page


@router.get("/subscribe", include_in_schema=False)
async def subscribe_page(hub: HubDep, group: str = "") -> HTMLResponse:
    """The form; an unknown group is refused (only groups that templates name exist)."""
    key, groups = await hub.read(lambda c: (links.secret_key(c, hub.settings), _groups(c)))
    if group not in groups:
        return _page_of(hub, "Subscribe", "<p>There is no such list.</p>", 404)
    return _page_of(hub, "Subscribe", _form(key, group))


@router.post("/subscribe", include_in_schema=False)
async def subscribe(hub: HubDep, request: Request) -> HTMLResponse:
    """Queue a confirmation (at most one per address and group per ``RESEND_MS``)."""
    now = now_ms()
    wait = _limiter(request, hub).check("subscribe:" + client_address(request.scope))
    if wait:
        page = _page_of(hub, "Subscribe", f"<p>Too many requests; try again in {wait} s.</p>", 429)
        page.headers["Retry-After"] = str(wait)
        return page
    key, groups = await hub.read(lambda c: (links.secret_key(c, hub.settings), _groups(c)))
    try:
        form = dict(form_body(await read_body(request, MAX_BODY)))
        links.check_csrf(key, _FORM_KEY, form.get("form", ""), now)
    except EngagehubError as exc:
        return _page_of(hub, "Subscribe", _form(key, "", exc.message), 400)
    group = form.get("group", "")
    if group not in groups:
        return _page_of(hub, "Subscribe", "<p>There is no such list.</p>", 404)
    try:
        contact = contact_for("email", form.get("email", ""), hub.settings.default_region)
    except EngagehubError as exc:
        return _page_of(hub, "Subscribe", _form(key, group, exc.message), 400)
    if form.get(_TRAP):
        return _page_of(hub, "Check your inbox", _DONE)  # a bot: the same answer, nothing done
    status = await hub.read(lambda c: consent.status(c, contact, "email", group))
    if status != "subscribed":  # pending: the confirmation again (its expiry starts anew)
        reason = RESENT if status == PENDING else REQUESTED
        change = double_opt_in_request(Change(contact, "email", "subscribed", group), reason)
        window = now // RESEND_MS
        digest = hashlib.sha256(f"{contact}\0{group}\0{window}".encode()).hexdigest()[:32]
        event = consent.change_event(change, now, f"{DOI_PREFIX}form:{digest}")
        builtin = await hub.read(consent.builtin_source_id)
        result = await hub.append(builtin, [event], now)
        await hub.caught_up(result.head, ["consent"])
    return _page_of(hub, "Check your inbox", _DONE)
