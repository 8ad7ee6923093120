"""The demo's campaigns, one function per vendor, each shaped like that vendor's real payloads."""

from __future__ import annotations

from typing import Any

from engagehub.demo.scenario import DAY, MINUTE, Builder, Call, User, chunks, iso
from engagehub.vendors import VENDORS, webhook_path

SOURCES = {kind: f"demo-{kind}" for kind in VENDORS}
"""Source kind -> the demo source's name (webhook URLs use it): one per kind of the registry."""

SHOP_NUMBER = "+14155550199"
Click = tuple[User, int, str]


def _pick(b: Builder, users: list[User], share: float) -> set[str]:
    """At least one, about ``share`` of ``users``: so every outcome shows up in the demo."""
    if not users:
        return set()
    k = max(1, round(share * len(users)))
    return {u.user_id for u in b.rng.sample(users, min(k, len(users)))}


def segment_identify(b: Builder) -> None:
    """Day 0: the shop's backend identifies every customer (traits carry email and phone)."""
    calls = []
    for user in b.plan.users:
        t = b.at(0, 8, 600)
        calls.append(
            {
                "type": "identify",
                "messageId": f"demo-{b.uid()}",
                "userId": user.user_id,
                "timestamp": iso(t),
                "traits": {
                    "email": user.email,
                    "phone": user.phone,
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                },
            }
        )
        b.expect("segment", "identify", None, user, t)
    for batch in chunks(calls, 50):
        b.plan.calls.append(Call("segment", "/v1/batch", {"batch": batch}, events=len(batch)))


def sendgrid_spring_sale(b: Builder) -> list[Click]:
    """Day 1: the Spring Sale email through SendGrid, with bounces, unsubscribes, spam reports."""
    users = b.plan.users
    bounced = _pick(b, users, 0.06)
    delivered = [u for u in users if u.user_id not in bounced]
    unsubscribed = _pick(b, delivered, 0.07)
    spam = _pick(b, [u for u in delivered if u.user_id not in unsubscribed], 0.03)
    events: list[dict[str, Any]] = []
    clicks: list[Click] = []
    names = {
        "processed": "Email Processed",
        "delivered": "Email Delivered",
        "bounce": "Email Bounced",
        "open": "Email Opened",
        "click": "Email Link Clicked",
        "unsubscribe": "Email Unsubscribed",
        "spamreport": "Email Marked as Spam",
    }

    def add(user: User, event: str, t: int, **extra: Any) -> None:
        t -= t % 1000
        events.append(
            {
                "email": user.email,
                "timestamp": t // 1000,
                "event": event,
                "sg_event_id": b.uid() + b.uid()[:6],
                "sg_message_id": f"{msg}.filterdrecv-5645d9c87f-demo-1-{b.uid()[:8]}",
                "smtp-id": f"<{msg}@ismtpd0001p1iad2.sendgrid.net>",
                "category": ["spring-sale"],
                "engagehub_campaign_id": "spring-sale",
                "engagehub_message_id": f"spring-sale:{user.user_id}",
                "user_id": user.user_id,
                **extra,
            }
        )
        b.expect("sendgrid", event, names[event], user, t)

    for user in users:
        msg = b.uid()[:22]
        t = b.at(1, 10, 30)
        add(user, "processed", t)
        if user.user_id in bounced:
            add(
                user,
                "bounce",
                t + MINUTE,
                reason="550 5.1.1 The email account that you tried to reach does not exist",
                status="5.1.1",
                type="bounce",
            )
            continue
        t += b.rng.randint(1, 3) * MINUTE
        add(user, "delivered", t, response="250 OK", ip="167.89.0.1")
        agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"
        if b.chance(0.55) or user.user_id in unsubscribed | spam:
            t += b.rng.randint(5, 600) * MINUTE
            add(user, "open", t, useragent=agent, ip="203.0.113.7", sg_machine_open=False)
            if b.chance(0.45):
                t += b.rng.randint(1, 30) * MINUTE
                url = "https://shop.example.com/spring?utm_campaign=spring-sale"
                add(user, "click", t, url=url, useragent=agent, ip="203.0.113.7")
                clicks.append((user, t, "spring-sale"))
        if user.user_id in unsubscribed:
            add(user, "unsubscribe", t + 2 * MINUTE)
            b.plan.unsubscribed_emails.append(user.email)
        elif user.user_id in spam:
            add(user, "spamreport", t + 2 * MINUTE)
    events.sort(key=lambda e: int(e["timestamp"]))
    for batch in chunks(events, 100):
        b.plan.calls.append(
            Call("sendgrid", webhook_path("sendgrid_events", SOURCES["sendgrid"]), batch)
        )
        b.plan.calls[-1].events = len(batch)
    return clicks


def twilio_flash_sms(b: Builder) -> None:
    """Day 2: a flash-deal SMS through Twilio; status callbacks, then STOP replies."""
    source = SOURCES["twilio"]
    account = "AC" + b.uid() + b.uid()
    users = b.plan.users
    failed = _pick(b, users, 0.07)
    delivered = [u for u in users if u.user_id not in failed]
    stops = _pick(b, delivered, 0.1)
    for user in users:
        sid = "SM" + b.uid() + b.uid()
        statuses = ["queued", "sent", "undelivered" if user.user_id in failed else "delivered"]
        for status in statuses:
            form = [
                ("AccountSid", account),
                ("ApiVersion", "2010-04-01"),
                ("From", SHOP_NUMBER),
                ("MessageSid", sid),
                ("MessageStatus", status),
                ("SmsSid", sid),
                ("SmsStatus", status),
                ("To", user.phone),
            ]
            if status == "undelivered":
                form.append(("ErrorCode", "30003"))
            path = webhook_path("twilio_status", source) + f"?m=flash-sms:{user.user_id}"
            b.plan.calls.append(Call("twilio", path, form=form))
            b.expect("twilio", f"sms:{status}", f"SMS {status.title()}", user, 0)
        if user.user_id in stops:
            body = b.rng.choice(("STOP", "Stop", "stop ", "UNSUBSCRIBE"))
            form = [
                ("AccountSid", account),
                ("ApiVersion", "2010-04-01"),
                ("Body", body),
                ("From", user.phone),
                ("MessageSid", "SM" + b.uid() + b.uid()),
                ("NumMedia", "0"),
                ("NumSegments", "1"),
                ("To", SHOP_NUMBER),
            ]
            b.plan.calls.append(Call("twilio", webhook_path("twilio_inbound", source), form=form))
            b.expect("twilio", "sms:received", "SMS Received", user, 0)
            b.plan.stop_phones.append(user.phone)


def braze_id(user: User) -> str:
    """The Braze-internal user id of a demo user."""
    return f"5f0e1b2c{user.index:016x}"


BRAZE_EMAIL = {
    "users.messages.email.Send": "Email Sent",
    "users.messages.email.Delivery": "Email Delivered",
    "users.messages.email.Open": "Email Opened",
    "users.messages.email.Click": "Email Link Clicked",
    "users.messages.email.Unsubscribe": "Email Unsubscribed",
    "users.behaviors.subscription.GlobalStateChange": "Channel Subscription Updated",
}


def braze_newsletter_avro(b: Builder) -> list[Click]:
    """Day 3: Braze's newsletter; Currents delivers it as Avro files (the import path)."""
    clicks: list[Click] = []
    dispatch = "disp-" + b.uid()
    unsubscribed = _pick(b, b.plan.users, 0.04)

    def add(event_type: str, user: User, t: int, **extra: Any) -> None:
        t -= t % 1000
        record = {
            "id": b.uid() + "-" + b.uid()[:8],
            "user_id": braze_id(user),
            "external_user_id": user.user_id,
            "time": t // 1000,
            "timezone": "America/Los_Angeles",
            "campaign_id": "braze-newsletter",
            "campaign_name": "March newsletter",
            "message_variation_id": "variation-a",
            "dispatch_id": dispatch,
            "email_address": user.email,
            "url": None,
            "user_agent": None,
            **extra,
        }
        b.plan.avro.setdefault(event_type, []).append(record)
        b.expect("braze", event_type, BRAZE_EMAIL[event_type], user, t)

    for user in b.plan.users:
        t = b.at(3, 9, 20)
        add("users.messages.email.Send", user, t)
        add("users.messages.email.Delivery", user, t + MINUTE)
        if b.chance(0.5) or user.user_id in unsubscribed:
            t += b.rng.randint(10, 900) * MINUTE
            add("users.messages.email.Open", user, t, user_agent="Mozilla/5.0")
            if b.chance(0.4):
                t += b.rng.randint(1, 20) * MINUTE
                url = "https://shop.example.com/new?utm_campaign=braze-newsletter"
                add("users.messages.email.Click", user, t, url=url, user_agent="Mozilla/5.0")
                clicks.append((user, t, "braze-newsletter"))
        if user.user_id in unsubscribed:
            add("users.messages.email.Unsubscribe", user, t + MINUTE)
            # The click is not the change: Braze reports the new state in its own event.
            add(
                "users.behaviors.subscription.GlobalStateChange",
                user,
                t + MINUTE,
                channel="email",
                subscription_status="Unsubscribed",
                state_change_source="Unsubscribe Link",
            )
            b.plan.unsubscribed_emails.append(user.email)
    return clicks


def braze_weekend_push(b: Builder) -> None:
    """Day 5: a Braze push campaign through the Currents HTTP connector (bearer token)."""
    events = []
    dispatch = "disp-" + b.uid()
    for user in b.plan.users:
        t = b.at(5, 11, 10)
        t -= t % 1000
        platform = b.rng.choice(("ios", "android"))
        kinds = [("users.messages.pushnotification.Send", "Push Sent", t)]
        if b.chance(0.3):
            opened = t + b.rng.randint(1, 240) * MINUTE
            kinds.append(("users.messages.pushnotification.Open", "Push Opened", opened))
        for event_type, canonical, when in kinds:
            events.append(
                {
                    "event_type": event_type,
                    "id": b.uid() + "-" + b.uid()[:8],
                    "time": when // 1000,
                    "user": {"user_id": braze_id(user), "external_user_id": user.user_id},
                    "properties": {
                        "campaign_id": "braze-weekend-push",
                        "campaign_name": "Weekend push",
                        "dispatch_id": dispatch,
                        "platform": platform,
                    },
                }
            )
            b.expect("braze", event_type, canonical, user, when)
    for batch in chunks(events, 100):
        path = webhook_path("braze_currents", SOURCES["braze"])
        b.plan.calls.append(Call("braze", path, {"events": batch}, events=len(batch)))


def moengage_welcome(b: Builder) -> list[Click]:
    """Day 4: MoEngage's welcome flow email, streamed (bearer token)."""
    events: list[dict[str, Any]] = []
    clicks: list[Click] = []
    steps = (
        ("Email Sent", "MOE_EMAIL_SENT", "Email Sent"),
        ("Email Opened", "MOE_EMAIL_OPEN", "Email Opened"),
        ("Email Clicked", "MOE_EMAIL_CLICK", "Email Link Clicked"),
    )
    for user in b.plan.users:
        t = b.at(4, 7, 60)
        t -= t % 1000
        depth = 1 + (b.chance(0.5) and 1) + (b.chance(0.4) and 1)
        for name, code, canonical in steps[:depth]:
            events.append(
                {
                    "event_name": name,
                    "event_code": code,
                    "event_uuid": f"{b.uid()}-{b.uid()[:4]}",
                    "event_time": t // 1000,
                    "uid": user.user_id,
                    "email_id": user.email,
                    "event_attributes": {
                        "campaign_id": "moe-welcome",
                        "campaign_name": "Welcome series",
                        "campaign_type": "Flows",
                        "flow_id": "flow-welcome",
                        "flow_name": "Welcome",
                    },
                    "user_attributes": {"first_name": user.first_name},
                    "device_attributes": {},
                }
            )
            b.expect("moengage", name, canonical, user, t)
            if name == "Email Clicked":
                clicks.append((user, t, "moe-welcome"))
            t += b.rng.randint(2, 300) * MINUTE
            t -= t % 1000
    for batch in chunks(events, 50):
        body = {"app_name": "Demo Shop", "source": "MOENGAGE", "moe_request_id": b.uid()}
        b.plan.calls.append(
            Call(
                "moengage",
                webhook_path("moengage_events", SOURCES["moengage"]),
                {**body, "events": batch},
            )
        )
        b.plan.calls[-1].events = len(batch)
    return clicks


def crossengage_winback(b: Builder) -> list[Click]:
    """Day 6: CrossEngage's win-back email; one request per user, as CrossEngage posts them."""
    clicks: list[Click] = []
    bounced = _pick(b, b.plan.users, 0.05)
    for user in b.plan.users:
        t = b.at(6, 10, 45)
        t -= t % 1000
        props = {
            "channel": "Email",
            "type": "Newsletter",
            "campaign_id": "xng-winback",
            "message_id": f"xng-{b.uid()[:10]}",
        }
        steps = [("Message Sent", "Email Sent", t)]
        if user.user_id in bounced:
            steps.append(("Message hard_bounced", "Email Bounced", t + MINUTE))
        else:
            steps.append(("Message Delivered", "Email Delivered", t + MINUTE))
            if b.chance(0.4):
                viewed = t + b.rng.randint(5, 400) * MINUTE
                steps.append(("Message Viewed", "Email Opened", viewed))
                if b.chance(0.35):
                    steps.append(("Message Clicked", "Email Link Clicked", viewed + MINUTE))
                    clicks.append((user, viewed + MINUTE, "xng-winback"))
        events = []
        for name, canonical, when in steps:
            events.append({"event": name, "timestamp": iso(when), "properties": props})
            b.expect("crossengage", name, canonical, user, when)
        body = {"id": user.user_id, "events": events}
        b.plan.calls.append(Call("crossengage", "/crossengage/events", body, events=len(events)))
    return clicks


def segment_conversions(b: Builder, clicks: list[Click]) -> None:
    """After some clicks, the shop tracks ``Order Completed`` (the conversions)."""
    orders = []
    for n, (user, clicked, campaign) in enumerate(sorted(clicks, key=lambda c: c[1])):
        if not (b.chance(0.35) or (n == 0 and len(clicks) > 0)):
            continue
        t = clicked + b.rng.randint(5, 180) * MINUTE
        price = round(b.rng.uniform(12, 240), 2)
        quantity = b.rng.randint(1, 3)
        orders.append(
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": f"demo-{b.uid()}",
                "userId": user.user_id,
                "timestamp": iso(min(t, b.plan.start_ms + 8 * DAY - MINUTE)),
                "properties": {
                    "order_id": f"order-{b.uid()[:8]}",
                    "revenue": round(price * quantity, 2),
                    "currency": "USD",
                    "campaign_id": campaign,
                    "products": [
                        {
                            "sku": f"sku-{b.rng.randint(1, 40):03d}",
                            "price": price,
                            "quantity": quantity,
                        }
                    ],
                },
                "context": {"campaign": {"name": campaign, "medium": "email"}},
            }
        )
        b.expect("segment", "Order Completed", None, user, t)
    for batch in chunks(orders, 50):
        b.plan.calls.append(Call("segment", "/v1/batch", {"batch": batch}, events=len(batch)))
