"""Sends through real providers: SMTP (aiosmtpd), SendGrid and Twilio (local fake APIs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from engagehub.app import create_app
from engagehub.messaging import sender
from engagehub.messaging.delivery import deliver, run_batch
from engagehub.settings import Settings
from tests.conftest import ADMIN_SECRET, app_hub, assert_error, make_source
from tests.messaging.conftest import FakeApi, Sink, identify, subscribe
from tests.vendors.signing import SendGridSigner

PROMO = {
    "name": "promo",
    "channel": "email",
    "subject": "Hello {{ profile.first_name | default: 'friend' }}",
    "html": "<p>Deals for {{ profile.plan | default: 'you' }}</p>",
    "text": "Deals for {{ profile.plan | default: 'you' }}",
}
SMS = {"name": "sms-promo", "channel": "sms", "body": "Hi {{ profile.first_name | default: 'x' }}"}


def events(client: TestClient, admin: dict[str, str], **params: str) -> list[dict[str, Any]]:
    r = client.get("/api/events", params={"order": "asc", **params}, headers=admin)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["events"]
    return found


def test_smtp_send_to_subscribed_person(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink, settings: Settings
) -> None:
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    _src, key = make_source(app_hub(client).db)
    identify(client, key, "u1", {"email": "ada@example.com", "first_name": "Ada", "plan": "pro"})
    subscribe(client, admin, "ada@example.com")

    r = client.post(
        "/api/sends", json={"template": "promo", "to": "Ada@Example.com"}, headers=admin
    )
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent["state"] == "sent"
    assert sent["provider"] == "smtp"
    mid = sent["message_id"]
    [msg] = smtp_sink.to("ada@example.com")
    assert msg["Subject"] == "Hello Ada"
    assert msg["Message-ID"] == f"<{mid}@engagehub>"
    assert msg["From"] == "news@shop.test"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"].strip("<>")
    assert unsub.startswith("https://hub.test/unsubscribe/")
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Deals for pro" in html
    assert unsub in html
    names = [e["event"] for e in events(client, admin, message_id=mid)]
    assert names == ["Email Sent", "Email Processed"]
    processed = events(client, admin, message_id=mid, event="Email Processed")[0]
    assert processed["contact"] == "ada@example.com"
    assert processed["properties"]["template"] == "promo"
    assert client.get(f"/api/sends/{mid}", headers=admin).json()["state"] == "sent"


def test_not_subscribed_is_dropped_transactional_is_sent(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    subscribe(client, admin, "bob@example.com", status="UNSUBSCRIBED")
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "bob@example.com"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "dropped", r.text
    assert r.json()["error"] == "not_subscribed: email is unsubscribed"
    [dropped] = events(client, admin, message_id=r.json()["message_id"])
    assert dropped["event"] == "Email Dropped"
    assert dropped["properties"]["drop_reason"] == "not_subscribed"
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "new@example.com"}, headers=admin
    )
    assert r.json()["error"] == "not_subscribed: email is no_status"
    assert smtp_sink.messages == []

    r = client.post(
        "/api/sends",
        json={"template": "promo", "to": "bob@example.com", "transactional": True},
        headers=admin,
    )
    assert r.json()["state"] == "sent", r.text
    [msg] = smtp_sink.to("bob@example.com")
    assert "List-Unsubscribe" in msg  # a marketing template keeps its link when forced through
    details = assert_error(
        client.post(
            "/api/sends", json={"template": "promo", "to": "not-an-address"}, headers=admin
        ),
        400,
        "invalid_payload",
    )
    assert details == {"field": "to", "value": "not-an-address"}
    assert_error(
        client.post("/api/sends", json={"template": "nope", "to": "a@b.co"}, headers=admin),
        404,
        "not_found",
    )


def test_unknown_merge_tag_fails_the_send_naming_it(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    strict = {**PROMO, "name": "strict", "subject": "For {{ profile.plan }}"}
    assert client.post("/api/templates", json=strict, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    r = client.post(
        "/api/sends", json={"template": "strict", "to": "ada@example.com"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "failed"
    assert "profile.plan" in r.json()["error"]
    [ev] = events(client, admin, message_id=r.json()["message_id"])
    assert ev["event"] == "Email Dropped"
    assert ev["properties"]["drop_reason"].startswith("template_error")
    assert smtp_sink.messages == []


def test_group_opt_out_is_dropped(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    tpl = {**PROMO, "name": "news", "subscription_group": "newsletter"}
    assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    subscribe(
        client, admin, "c@example.com", groups=[{"name": "newsletter", "status": "UNSUBSCRIBED"}]
    )
    r = client.post("/api/sends", json={"template": "news", "to": "c@example.com"}, headers=admin)
    assert r.json()["state"] == "dropped"
    assert "newsletter" in r.json()["error"]


def test_smtp_550_is_terminal_451_is_retried(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    for who in ("gone@example.com", "busy@example.com"):
        subscribe(client, admin, who)
    smtp_sink.reject.add("gone@example.com")
    smtp_sink.defer.add("busy@example.com")
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "gone@example.com"}, headers=admin
    )
    assert r.status_code == 200
    assert r.json()["state"] == "failed"
    assert r.json()["error"].startswith("SMTP 550")
    [ev] = events(client, admin, message_id=r.json()["message_id"])
    assert ev["event"] == "Email Dropped"
    assert "550" in ev["properties"]["drop_reason"]

    r = client.post(
        "/api/sends", json={"template": "promo", "to": "busy@example.com"}, headers=admin
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "pending", r.text
    assert r.json()["error"].startswith("SMTP 451")
    assert r.json()["attempts"] == 1
    assert events(client, admin, message_id=r.json()["message_id"]) == []
    assert smtp_sink.messages == []


@pytest.fixture
def provider_client(
    database_url: str, sendgrid_api: FakeApi, twilio_api: FakeApi
) -> Iterator[TestClient]:
    """An app sending email through SendGrid and SMS through Twilio (local fakes)."""
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        email_provider="sendgrid",
        sendgrid_api_key="SG.test-key",  # type: ignore[arg-type]
        sendgrid_base_url=sendgrid_api.url,
        twilio_account_sid="AC123",
        twilio_auth_token="tok",  # type: ignore[arg-type]
        twilio_from="+15005550006",
        twilio_base_url=twilio_api.url,
        twilio_status_source="tw",
        provider_timeout_seconds=0.5,
        public_base_url="https://hub.test",
        run_services=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_sendgrid_request_shape_and_errors(
    provider_client: TestClient, admin: dict[str, str], sendgrid_api: FakeApi
) -> None:
    client = provider_client
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "ada@example.com"}, headers=admin
    )
    assert r.json()["state"] == "sent", r.text
    mid = r.json()["message_id"]
    assert r.json()["provider_message_id"].startswith("sg")
    [req] = sendgrid_api.requests
    body = req["json"]
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert body["personalizations"][0]["custom_args"] == {"engagehub_message_id": mid}
    assert body["from"] == {"email": "engagehub@localhost"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # SendGrid's Event Webhook echoes the custom arg: its events land on our message
    signer = SendGridSigner()
    make_source(app_hub(client).db, "sg", "sendgrid", secret=signer.public)
    delivered = [
        {
            "email": "ada@example.com",
            "event": "delivered",
            "timestamp": int(time.time()),
            "sg_event_id": "ev-1",
            "sg_message_id": f"{r.json()['provider_message_id']}.filter0001",
            "engagehub_message_id": mid,
        }
    ]
    raw = orjson.dumps(delivered)
    hook = client.post("/webhooks/sendgrid/sg", content=raw, headers=signer.headers(raw))
    assert hook.status_code == 200, hook.text
    assert [e["event"] for e in events(client, admin, message_id=mid)] == [
        "Email Sent",
        "Email Processed",
        "Email Delivered",
    ]

    subscribe(client, admin, "bad@example.com")
    subscribe(client, admin, "flaky@example.com")
    sendgrid_api.status_for.update({"bad@example.com": 400, "flaky@example.com": 503})
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "bad@example.com"}, headers=admin
    )
    assert r.json()["state"] == "failed"
    assert "SendGrid 400" in r.json()["error"]
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "flaky@example.com"}, headers=admin
    )
    assert r.status_code == 202
    assert r.json()["state"] == "pending"


def test_twilio_request_shape_status_webhook_attaches_and_retry_is_idempotent(
    provider_client: TestClient, admin: dict[str, str], twilio_api: FakeApi
) -> None:
    client = provider_client
    hub = app_hub(client)
    make_source(hub.db, "tw", "twilio", secret="tok")
    assert client.post("/api/templates", json=SMS, headers=admin).status_code == 201
    subscribe(client, admin, "+14155550100", kind="SMS")
    r = client.post(
        "/api/sends", json={"template": "sms-promo", "to": "(415) 555-0100"}, headers=admin
    )
    assert r.json()["state"] == "sent", r.text
    mid = r.json()["message_id"]
    [req] = twilio_api.requests
    form = req["form"]
    assert form["To"] == "+14155550100"
    assert form["From"] == "+15005550006"
    assert form["Body"] == "Hi x\nReply STOP to unsubscribe"
    callback = form["StatusCallback"]
    assert callback == f"https://hub.test/webhooks/twilio/tw/status?m={mid}"
    assert req["headers"]["I-Twilio-Idempotency-Token"] == mid
    assert [e["event"] for e in events(client, admin, message_id=mid)] == ["SMS Queued"]

    # Twilio reports delivery to the callback URL: the event lands on the same message.
    params = {
        "MessageSid": r.json()["provider_message_id"],
        "MessageStatus": "delivered",
        "To": "+14155550100",
        "From": "+15005550006",
        "AccountSid": "AC123",
    }
    signature = RequestValidator("tok").compute_signature(callback, params)
    r2 = client.post(
        f"/webhooks/twilio/tw/status?m={mid}",
        data=params,
        headers={"X-Twilio-Signature": signature},
    )
    assert r2.status_code == 200, r2.text
    assert [e["event"] for e in events(client, admin, message_id=mid)] == [
        "SMS Queued",
        "SMS Delivered",
    ]

    # a 500 is retried later with the same idempotency token: one message at Twilio
    subscribe(client, admin, "+14155550101", kind="SMS")
    twilio_api.status_for["+14155550101"] = 500
    r = client.post(
        "/api/sends", json={"template": "sms-promo", "to": "+14155550101"}, headers=admin
    )
    assert r.status_code == 202
    assert "Twilio 500" in r.json()["error"]
    mid = r.json()["message_id"]
    del twilio_api.status_for["+14155550101"]
    with hub.db.writer() as conn:
        conn.execute("UPDATE message_sends SET next_attempt_at = 0 WHERE id = ?", (mid,))
    run_batch(hub.db, hub.settings, 10)
    run_batch(hub.db, hub.settings, 10)
    assert client.get(f"/api/sends/{mid}", headers=admin).json()["state"] == "sent"
    tokens = [q["headers"]["I-Twilio-Idempotency-Token"] for q in twilio_api.requests]
    assert tokens.count(mid) == 2
    assert len(twilio_api.seen_tokens) == 2

    # a provider timeout is transient: retried later, the error says what happened
    subscribe(client, admin, "+14155550102", kind="SMS")
    twilio_api.status_for["+14155550102"] = 0
    r = client.post(
        "/api/sends", json={"template": "sms-promo", "to": "+14155550102"}, headers=admin
    )
    assert r.status_code == 202, r.text
    assert "ReadTimeout" in r.json()["error"]

    details = assert_error(
        client.post("/api/sends", json={"template": "sms-promo", "to": "12"}, headers=admin),
        400,
        "invalid_payload",
    )
    assert details["value"] == "12"


def test_no_reply_after_the_final_dot_is_never_resent(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    hub = app_hub(client)
    hub.settings.provider_timeout_seconds = 0.3
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    subscribe(client, admin, "slow@example.com")
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "slow@example.com"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["provider_message_id"]) == ("sent", None)
    [ev] = events(client, admin, message_id=r.json()["message_id"])
    assert ev["event"] == "Email Sent"
    assert ev["properties"]["unconfirmed"] is True
    with hub.db.writer() as conn:
        conn.execute("UPDATE message_sends SET next_attempt_at = 0, lease_until = 0")
    run_batch(hub.db, hub.settings, 10)
    assert len(smtp_sink.to("slow@example.com")) == 1


def test_a_claim_taken_over_after_its_lease_never_sends(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    hub = app_hub(client)
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    with hub.db.writer() as conn:
        with conn.transaction():
            mid = sender.enqueue(conn, "promo", "email", "ada@example.com")
        [job] = sender.claim(conn, 10, ids=[mid])
        # this claim stalled past its lease and another process claimed the row again
        conn.execute("UPDATE message_sends SET attempts = attempts + 1 WHERE id = ?", (mid,))
    asyncio.run(deliver(hub.db, hub.settings, [job]))
    assert smtp_sink.messages == []
    with hub.db.reader() as conn:
        row = conn.one("SELECT state, attempts FROM message_sends WHERE id = ?", (mid,))
    assert row == {"state": "sending", "attempts": 2}
    assert events(client, admin, message_id=mid) == []
