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
from dataclasses import dataclass
from typing import Any

import orjson

from engagehub.consent.batches import IMPORTED
from engagehub.consent.model import CHANNELS, PENDING, TYPES, Change, contact_for, status_of
from engagehub.errors import PayloadError
from engagehub.model import StoredEvent

UPDATED = ("Channel Subscription Updated", "Group Subscription Updated")
_EMAIL_EVENTS = {
    "Email Unsubscribed": ("unsubscribed", False, "vendor_unsubscribe"),
    "Email Subscribed": ("subscribed", False, "vendor_subscribe"),
    "Email Group Unsubscribed": ("unsubscribed", True, "vendor_unsubscribe"),
    "Email Group Subscribed": ("subscribed", True, "vendor_subscribe"),
}
# Generic (channel-less) vendor events: the log's ``channel`` says which channel they change
# (CrossEngage "Message Unsubscribed" on SMS...).
_ANY_CHANNEL = {
    "Message Unsubscribed": ("vendor_unsubscribe", None),
    "Push Unsubscribed": ("vendor_unsubscribe", None),
    "Message Marked as Spam": ("spam_report", "spam"),
    "Message Hard Bounced": ("hard_bounce", "bounce"),
}
# Hard bounces on other channels (CrossEngage hard_bounced) say so with bounce_type hard.
_HARD_BOUNCES = ("SMS Undelivered", "WhatsApp Message Undelivered", "Push Bounced")
_INBOUND = {"SMS Received": "sms", "WhatsApp Message Received": "whatsapp"}
RELEVANT = (
    *UPDATED,
    *_EMAIL_EVENTS,
    *_ANY_CHANNEL,
    *_HARD_BOUNCES,
    *_INBOUND,
    "Email Marked as Spam",
    "Email Bounced",
    IMPORTED,  # a CSV import's record (consent.batches), built-in source only
)
# Events the processor itself derived (``consent:`` keys under the built-in source) all carry
# ``derived_from`` and change nothing: not reading them back saves a fifth of a CSV catch-up.
WHERE = (
    "(type = 'identify' OR event IN (" + ", ".join(f"'{e}'" for e in RELEVANT) + ")) "
    "AND NOT (dedup_key LIKE 'consent:%' "
    "AND source_id IN (SELECT id FROM sources WHERE kind = 'engagehub'))"
)


@dataclass(slots=True)
class Request:
    """A change an event asks for, before its contact point is known: ``key`` is the contact
    value the event carries (None when it names only a user)."""

    channel: str
    status: str
    group: str
    reason: str
    key: object
    allow_resubscribe: bool = False
    trusted: bool = False


def changes_of(
    ev: StoredEvent,
    builtin_source_id: int,
    region: str,
    spam_policy: str = "unsubscribe",
    bounce_policy: str = "unsubscribe",
) -> Iterator[Change]:
    """Every change ``ev`` asks for; malformed requests are skipped (they were validated at the
    edge when engagehub wrote them; vendors' bad values are not worth failing a batch for)."""
    if ev.type == "identify":
        if "derived_from" not in ev.properties:
            yield from _messaging_subscriptions(ev, region)
        return
    for req in requests_of(ev, builtin_source_id, spam_policy, bounce_policy):
        key = req.key
        try:
            contact = (
                key
                if req.trusted and isinstance(key, str) and key
                else contact_for(req.channel, key, region)
            )
        except PayloadError:
            continue
        yield Change(contact, req.channel, req.status, req.group, req.reason, req.allow_resubscribe)


def requests_of(
    ev: StoredEvent,
    builtin_source_id: int,
    spam_policy: str = "unsubscribe",
    bounce_policy: str = "unsubscribe",
) -> Iterator[Request]:
    """The changes a track event asks for, with the contact value it carries (maybe none)."""
    props = ev.properties
    if "derived_from" in props or ev.type == "identify" or props.get("consent_effect") == "none":
        return
    name = ev.event
    try:
        if name in UPDATED:
            yield from _updated(ev, trusted=ev.source_id == builtin_source_id)
        elif ev.source_id == builtin_source_id:
            return
        elif name in _EMAIL_EVENTS:
            status, grouped, reason = _EMAIL_EVENTS[name]
            group = str(props.get("subscription_group") or "") if grouped else ""
            if not grouped or group:
                yield Request("email", status, group, reason, _email_key(ev))
        elif name == "Email Marked as Spam" and spam_policy == "unsubscribe":
            yield Request("email", "unsubscribed", "", "spam_report", _email_key(ev))
        elif name == "Email Bounced" and bounce_policy == "unsubscribe":
            if props.get("bounce_type", "hard") == "hard":
                yield Request("email", "unsubscribed", "", "hard_bounce", _email_key(ev))
        elif name in _ANY_CHANNEL or name in _HARD_BOUNCES:
            reason, policy = _ANY_CHANNEL.get(name, ("hard_bounce", "bounce"))
            if policy == "spam" and spam_policy != "unsubscribe":
                return
            if policy == "bounce" and (
                bounce_policy != "unsubscribe" or props.get("bounce_type") != "hard"
            ):
                return
            channel = "push" if name.startswith("Push") else _channel(ev)
            if channel in CHANNELS:
                yield Request(channel, "unsubscribed", "", reason, _key(ev, channel))
        elif name in _INBOUND:
            action = props.get("keyword_action")
            if action in ("subscribe", "unsubscribe"):
                channel = _INBOUND[name]
                status = "subscribed" if action == "subscribe" else "unsubscribed"
                yield Request(channel, status, "", "keyword", _key(ev, channel))
    except PayloadError:
        return


def _channel(ev: StoredEvent) -> str:
    channel = str(ev.properties.get("channel") or ev.channel or "").strip().lower()
    return TYPES.get(channel.upper(), channel)


def _email_key(ev: StoredEvent) -> object:
    return ev.properties.get("email") or ev.contact


def _key(ev: StoredEvent, channel: str) -> object:
    """The contact value of ``channel`` an event carries (None when it names only a user)."""
    props = ev.properties
    contact = ev.contact or ""
    if channel == "email":
        return props.get("email") or (contact if "@" in contact else None)
    if channel in ("sms", "whatsapp"):
        return props.get("phone") or (contact if contact and "@" not in contact else None)
    return props.get("contact") or contact or None


def _updated(ev: StoredEvent, trusted: bool = False) -> Iterator[Request]:
    """``trusted``: engagehub wrote the event with a contact it had already normalized."""
    props = ev.properties
    channel = _channel(ev)
    if channel not in CHANNELS:
        return
    key = props.get("email") if channel == "email" else props.get("phone")
    key = key or props.get("contact") or ev.contact
    group = str(props.get("subscription_group") or "") if ev.event == UPDATED[1] else ""
    if ev.event == UPDATED[1] and not group:
        return
    status = props.get("subscription_status")
    yield Request(
        channel,
        PENDING if trusted and status == PENDING else status_of(status),
        group,
        str(props["reason"]) if props.get("reason") else "vendor",
        key,
        bool(props.get("allow_resubscribe")),
        trusted,
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
