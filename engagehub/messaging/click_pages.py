"""The redirect of our own tracked links (no admin token; the signed link is the credential).

    GET  /c/{token}    records "Email Link Clicked", then 302 to the signed URL
    HEAD /c/{token}    the same, flagged ``bot_click_reason: head_request`` (people's browsers
                       GET; link checkers and security gateways probe with HEAD)

A hit on the hidden honeypot link is flagged ``hidden_link`` and answered with an empty page.
Scanner agents and networks are flagged by ``classify.flag`` as for any vendor's click, and the
timing rules (``classify.timing``) run in the writer. Nothing is ever dropped: a flagged click
is stored and counts as ``bot_clicked``. The event is durable before the redirect is sent; a
repeat of the same link, method and agent within one second is one event (dedup key), so a
replaying client cannot grow the log faster than that per link.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.api.deps import HubDep
from engagehub.classify import flag
from engagehub.consent import store as consent
from engagehub.errors import EngagehubError
from engagehub.hub import Hub
from engagehub.messaging import links, tracking
from engagehub.messaging.recipient_pages import _error_page
from engagehub.model import IncomingEvent
from engagehub.security.identity import client_address
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

router = APIRouter(tags=["messaging: recipient pages"])
_CLICK = {"email": "Email Link Clicked", "sms": "SMS Link Clicked"}


def _send(conn: Connection, mid: str) -> dict[str, Any] | None:
    row = conn.one(
        "SELECT channel, contact, broadcast_id, journey, template, state, updated_at "
        "FROM message_sends WHERE id = ?",
        (mid,),
    )
    return None if row is None or str(row["contact"]).startswith("[erased") else row


def click_event(
    send: dict[str, Any], mid: str, url: str, method: str, agent: str, ip: str, now: int
) -> IncomingEvent:
    """The canonical click of one request, flagged where it looks like a machine."""
    channel = str(send["channel"])
    name = _CLICK.get(channel, "Message Clicked")
    props: dict[str, Any] = {
        "message_id": mid,
        "url": url or None,
        "user_agent": agent,
        "ip": ip,
        "http_method": method,
        "template": send["template"],
        "email" if channel == "email" else "phone": send["contact"],
    }
    if send["broadcast_id"]:
        props["broadcast_id"] = send["broadcast_id"]
    if send["journey"]:
        props["journey"] = send["journey"]
    if send["state"] in ("sent", "handed"):  # when we handed it over: the timing rule's clock
        props["sent_at"] = int(send["updated_at"])
    if url == tracking.HONEYPOT:
        props["bot_click"] = True
        props["bot_click_reason"] = "hidden_link"
    link = hashlib.sha256(f"{url}\0{method}\0{agent}".encode()).hexdigest()[:16]
    event = IncomingEvent(
        dedup_key=f"click:{mid}:{link}:{now // 1000}",
        event_time=now,
        raw=orjson.dumps({"method": method, "url": url, "user_agent": agent, "ip": ip}).decode(),
        type="track",
        vendor_event=name,
        event=name,
        channel=channel,
        contact=str(send["contact"]),
        message_id=mid,
        campaign_id=send["broadcast_id"] or send["journey"],
        properties=props,
    )
    return flag(event)


def _lookup(conn: Connection, hub: Hub, token: str) -> tuple[str, str, Any, int]:
    """(message id, url, its send row or None, built-in source id): one trip to the database."""
    mid, url = tracking.verify(links.secret_key(conn, hub.settings), token)
    return mid, url, _send(conn, mid), consent.builtin_source_id(conn)


@router.api_route("/c/{token}", methods=["GET", "HEAD"], include_in_schema=False)
async def click(hub: HubDep, token: str, request: Request) -> Response:
    """Record the click (durably), then send the browser on."""
    try:
        mid, url, send, builtin = await hub.read(lambda c: _lookup(c, hub, token))
    except EngagehubError as exc:
        return _error_page(exc)
    if send is not None:  # (a message of an erased person: redirected, nothing recorded)
        now = now_ms()
        agent = request.headers.get("user-agent", "")[:500]
        event = click_event(
            send, mid, url, request.method, agent, client_address(request.scope), now
        )
        await hub.append(builtin, [event], now)
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if url == tracking.HONEYPOT:
        return Response(status_code=204, headers=headers)
    return Response(status_code=302, headers={**headers, "Location": url})
