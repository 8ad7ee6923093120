"""Which subscription changes an event of the log asks for (pure: event in, changes out).

Sources of change, by canonical event:
- "Channel/Group Subscription Updated" written by engagehub (API, CSV, links, keywords) or sent
  by a vendor (Braze group state changes, Segment Engage) — ``channel``, ``subscription_group``,
  ``subscription_status``, ``email``/``phone``/``contact``, ``reason``, ``allow_resubscribe``;
- vendor email events: unsubscribed, (group) (un)subscribed, spam report, hard bounce (the last
  two by policy);
- inbound SMS/WhatsApp with ``keyword_action`` (STOP/START);
- Segment identify calls carrying ``context.messaging_subscriptions``.

Events engagehub derived from a change it already applied carry ``derived_from`` and are skipped,
as are the informational "Email Subscribed/Unsubscribed/Group..." companions it writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from engagehub.consent.model import PENDING, TYPES, Change, contact_for, status_of
from engagehub.errors import PayloadError
from engagehub.model import StoredEvent

UPDATED = ("Channel Subscription Updated", "Group Subscription Updated")
_EMAIL_EVENTS = {
    "Email Unsubscribed": ("unsubscribed", False, "vendor_unsubscribe"),
    "Email Subscribed": ("subscribed", False, "vendor_subscribe"),
    "Email Group Unsubscribed": ("unsubscribed", True, "vendor_unsubscribe"),
    "Email Group Subscribed": ("subscribed", True, "vendor_subscribe"),
}
RELEVANT = (
    *UPDATED,
    *_EMAIL_EVENTS,
    "Email Marked as Spam",
    "Email Bounced",
    "SMS Received",
    "WhatsApp Message Received",
)
# Events the processor itself derived (``consent:`` keys under the built-in source) all carry
# ``derived_from`` and change nothing: not reading them back saves a fifth of a CSV catch-up.
WHERE = (
    "(type = 'identify' OR event IN (" + ", ".join(f"'{e}'" for e in RELEVANT) + ")) "
    "AND NOT (dedup_key LIKE 'consent:%' "
    "AND source_id IN (SELECT id FROM sources WHERE kind = 'engagehub'))"
)


def changes_of(
    ev: StoredEvent,
    builtin_source_id: int,
    region: str,
    spam_policy: str = "unsubscribe",
    bounce_policy: str = "unsubscribe",
) -> Iterator[Change]:
    """Every change ``ev`` asks for; malformed requests are skipped (they were validated at the
    edge when engagehub wrote them; vendors' bad values are not worth failing a batch for)."""
    props = ev.properties
    if "derived_from" in props:
        return
    try:
        if ev.type == "identify":
            yield from _messaging_subscriptions(ev, region)
        elif ev.event in UPDATED:
            yield from _updated(ev, region, trusted=ev.source_id == builtin_source_id)
        elif ev.source_id == builtin_source_id:
            return
        elif ev.event in _EMAIL_EVENTS:
            status, grouped, reason = _EMAIL_EVENTS[ev.event]
            group = str(props.get("subscription_group") or "") if grouped else ""
            if grouped and not group:
                return
            yield Change(_email(ev, region), "email", status, group, reason)
        elif ev.event == "Email Marked as Spam" and spam_policy == "unsubscribe":
            yield Change(_email(ev, region), "email", "unsubscribed", "", "spam_report")
        elif ev.event == "Email Bounced" and bounce_policy == "unsubscribe":
            if props.get("bounce_type", "hard") == "hard":
                yield Change(_email(ev, region), "email", "unsubscribed", "", "hard_bounce")
        elif ev.event in ("SMS Received", "WhatsApp Message Received"):
            action = props.get("keyword_action")
            if action in ("subscribe", "unsubscribe"):
                channel = "whatsapp" if ev.event.startswith("WhatsApp") else "sms"
                phone = contact_for(channel, props.get("phone") or ev.contact, region)
                status = "subscribed" if action == "subscribe" else "unsubscribed"
                yield Change(phone, channel, status, "", "keyword")
    except PayloadError:
        return


def _email(ev: StoredEvent, region: str) -> str:
    return contact_for("email", ev.properties.get("email") or ev.contact, region)


def _updated(ev: StoredEvent, region: str, trusted: bool = False) -> Iterator[Change]:
    """``trusted``: engagehub wrote the event with a contact it had already normalized."""
    props = ev.properties
    channel = str(props.get("channel") or ev.channel or "").strip().lower()
    channel = TYPES.get(channel.upper(), channel)
    if channel not in ("email", "sms", "whatsapp", "push"):
        return
    key = props.get("email") if channel == "email" else props.get("phone")
    key = key or props.get("contact") or ev.contact
    group = str(props.get("subscription_group") or "") if ev.event == UPDATED[1] else ""
    if ev.event == UPDATED[1] and not group:
        return
    status = props.get("subscription_status")
    yield Change(
        key if trusted and isinstance(key, str) and key else contact_for(channel, key, region),
        channel,
        PENDING if trusted and status == PENDING else status_of(status),
        group,
        str(props["reason"]) if props.get("reason") else "vendor",
        bool(props.get("allow_resubscribe")),
    )


def _messaging_subscriptions(ev: StoredEvent, region: str) -> Iterator[Change]:
    """Segment's identify ``context.messaging_subscriptions``: key, type, status, groups."""
    try:
        raw: Any = orjson.loads(ev.raw)
    except orjson.JSONDecodeError:
        return
    context = raw.get("context") if isinstance(raw, dict) else None
    items = context.get("messaging_subscriptions") if isinstance(context, dict) else None
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        channel = TYPES.get(str(item.get("type", "")).upper())
        if channel is None:
            continue
        try:
            contact = contact_for(channel, item.get("key"), region)
            if item.get("status"):
                yield Change(contact, channel, status_of(item["status"]), "", "identify")
            for group in item.get("groups") or ():
                if isinstance(group, dict) and group.get("name") and group.get("status"):
                    yield Change(
                        contact,
                        channel,
                        status_of(group["status"]),
                        str(group["name"]),
                        "identify",
                    )
        except PayloadError:
            continue
