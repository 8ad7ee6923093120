"""Double opt-in, messaging side: the confirmation message, its signed link, and expiry.

The ``double_opt_in`` processor follows the consent requests (``doi:`` events, see
``consent/double_opt_in.py``) and queues one transactional confirmation message per request
(id derived from the event, so a replay queues nothing twice) whose ``data.confirm_url`` is a
signed link to ``/confirm/{token}``. The token names the contact point and when it was issued;
it is valid for ``double_opt_in_expiry_hours``. ``expire`` turns requests nobody confirmed in
time into ``did_not_subscribe``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from typing import Any

from engagehub.consent import store as consent
from engagehub.consent.double_opt_in import CONFIRMED, DOI_PREFIX, EXPIRED
from engagehub.consent.model import PENDING, Change
from engagehub.errors import SignatureError
from engagehub.messaging import links
from engagehub.messaging.sender import enqueue
from engagehub.model import StoredEvent
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms

NS = uuid.UUID("3c1f6a52-8e0b-4c61-9a0e-5d2b7f41c9e8")
HOUR_MS = 3_600_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key: bytes, who: links.Recipient, issued: int) -> str:
    """A confirmation token: the contact point and issue time, HMAC-signed."""
    body = _b64(f"{who.channel}\0{who.contact}\0{who.group}\0{issued}".encode())
    mac = hmac.new(key, f"doi:{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(key: bytes, token: str, now: int, expiry_hours: float) -> links.Recipient:
    """The contact point of a genuine, unexpired token; SignatureError otherwise."""
    try:
        body, mac_text = token.split(".", 1)
        mac = base64.urlsafe_b64decode(mac_text + "=" * (-len(mac_text) % 4))
        channel, contact, group, issued = (
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("\0")
        )
        issued_ms = int(issued)
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("this confirmation link is damaged") from None
    good = hmac.new(key, f"doi:{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, good):
        raise SignatureError("this confirmation link's signature does not match")
    if now - issued_ms > expiry_hours * HOUR_MS:
        raise SignatureError(
            "this confirmation link has expired; ask for a new one", issued_at=format_ts(issued_ms)
        )
    return links.Recipient(channel, contact, group)


def confirm_change(who: links.Recipient) -> Change:
    """The person's confirmation: subscribed, by their own action."""
    return Change(who.contact, who.channel, "subscribed", who.group, CONFIRMED)


class ConfirmationProcessor:
    """Queues the confirmation message of each double opt-in request."""

    name = "double_opt_in"
    where: str | None = (
        f"dedup_key LIKE '{DOI_PREFIX}%' "
        "AND source_id IN (SELECT id FROM sources WHERE kind = 'engagehub')"
    )
    payload = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """One message per request (idempotent: ids derive from the request event)."""
        wanted = [ev for ev in events if ev.properties.get("subscription_status") == PENDING]
        if not wanted:
            return
        key = links.secret_key(conn, self.settings)
        base = self.settings.public_base_url or f"http://{self.settings.host}:{self.settings.port}"
        expiry = int(self.settings.double_opt_in_expiry_hours * HOUR_MS)
        for ev in wanted:
            props = ev.properties
            channel = str(props.get("channel") or ev.channel or "")
            if channel not in ("email", "sms", "whatsapp"):
                continue
            contact = str(props.get("email") or props.get("phone") or ev.contact or "")
            group = str(props.get("subscription_group") or "")
            who = links.Recipient(channel, contact, group)
            token = sign(key, who, ev.event_time)
            data: dict[str, Any] = {
                "confirm_url": f"{base.rstrip('/')}/confirm/{token}",
                "expires_at": format_ts(ev.event_time + expiry),
                "group": group or None,
            }
            enqueue(
                conn,
                str(props.get("confirmation_template") or self.settings.double_opt_in_template),
                channel,
                contact,
                {"data": data},
                transactional=True,
                message_id=str(uuid.uuid5(NS, ev.event_id)),
            )

    def reset(self, conn: Connection) -> None:
        """Nothing derived to forget: queued messages keep their ids (a replay adds none)."""


def expire(conn: Connection, settings: Settings) -> int:
    """Requests pending longer than the expiry become ``did_not_subscribe``; returns how many."""
    now = now_ms()
    cutoff = now - int(settings.double_opt_in_expiry_hours * HOUR_MS)
    rows = conn.all(
        "SELECT contact, channel, group_name, event_time FROM subscription_states "
        "WHERE status = 'pending' AND event_time < ? LIMIT 1000",  # the partial index
        (cutoff,),
    )
    if not rows:
        return 0
    events = [
        consent.change_event(
            Change(r["contact"], r["channel"], "did_not_subscribe", r["group_name"], EXPIRED),
            now,
            f"doiexp:{r['contact']}:{r['channel']}:{r['group_name']}:{r['event_time']}",
        )
        for r in rows
    ]
    with conn.transaction():
        log.append(conn, [log.Batch(consent.builtin_source_id(conn), now, events)])
    return len(events)
