"""Vendor webhooks over the ASGI app: verified, stored once, nothing unsigned ever stored."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from engagehub.model import StoredEvent
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.vendors import twilio
from engagehub.vendors.common import form_body
from tests.cases import CASES
from tests.conftest import ADMIN_SECRET, assert_error, make_source
from tests.vendors.signing import SendGridSigner

TOKEN = "twilio-auth-token-0123456789abcdef"


def stored(db: Database) -> list[StoredEvent]:
    """What the vendor sent: consent changes engagehub derived from it live in its own source."""
    with db.session() as conn:
        builtin = conn.scalar("SELECT id FROM sources WHERE kind = 'engagehub'")
        return [e for e in log.read_range(conn, 0, 10**9) if e.source_id != builtin]


def test_sendgrid_signed_batch_is_stored_once(client: TestClient, db: Database) -> None:
    signer = SendGridSigner()
    make_source(db, "sg", "sendgrid", secret=signer.public)
    body = (CASES / "sendgrid" / "event_webhook_batch.json").read_bytes()
    for _ in range(2):  # SendGrid retries: the second delivery adds nothing
        r = client.post("/webhooks/sendgrid/sg", content=body, headers=signer.headers(body))
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 14
    events = stored(db)
    assert len(events) == 14
    assert {e.event for e in events} >= {"Email Machine Opened", "Email Group Subscribed"}


def test_sendgrid_forged_stale_or_unsigned_stores_nothing(client: TestClient, db: Database) -> None:
    signer = SendGridSigner()
    make_source(db, "sg", "sendgrid", secret=signer.public)
    body = b'[{"email": "a@b.c", "timestamp": 1772445600, "event": "open", "sg_event_id": "x"}]'
    forged = SendGridSigner().headers(body)
    assert_error(
        client.post("/webhooks/sendgrid/sg", content=body, headers=forged), 401, "invalid_signature"
    )
    stale = signer.headers(body, int(time.time()) - 3600)
    details = assert_error(
        client.post("/webhooks/sendgrid/sg", content=body, headers=stale), 401, "invalid_signature"
    )
    assert details["reason"] == "stale"
    assert_error(client.post("/webhooks/sendgrid/sg", content=body), 401, "invalid_signature")
    tampered = signer.headers(body)
    assert_error(
        client.post(
            "/webhooks/sendgrid/sg", content=body.replace(b"open", b"click"), headers=tampered
        ),
        401,
        "invalid_signature",
    )
    assert_error(
        client.post("/webhooks/sendgrid/nope", content=body, headers=signer.headers(body)),
        404,
        "not_found",
    )
    make_source(db, "nokey", "sendgrid")
    assert_error(
        client.post("/webhooks/sendgrid/nokey", content=body, headers=signer.headers(body)),
        401,
        "invalid_signature",
    )
    assert stored(db) == []


def _twilio_post(
    client: TestClient, path: str, params: list[tuple[str, str]], token: str = TOKEN
) -> httpx.Response:
    url = "http://testserver" + path
    signature = RequestValidator(token).compute_signature(url, dict(params))
    return client.post(
        path,
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def test_twilio_status_callbacks_in_any_order(client: TestClient, db: Database) -> None:
    make_source(db, "tw", "twilio", secret=TOKEN)
    base = [
        ("MessageSid", "SM9"),
        ("AccountSid", "AC1"),
        ("From", "+14155550199"),
        ("To", "+14155550100"),
    ]
    for status in ("delivered", "sent", "queued", "delivered"):
        r = _twilio_post(
            client, "/webhooks/twilio/tw/status?m=msg-1", [*base, ("MessageStatus", status)]
        )
        assert r.status_code == 200, r.text
    events = stored(db)
    assert [e.event for e in events] == ["SMS Delivered", "SMS Sent", "SMS Queued"]
    assert {e.message_id for e in events} == {"msg-1"}
    assert events[0].properties["provider_message_id"] == "SM9"
    forged = _twilio_post(
        client,
        "/webhooks/twilio/tw/status",
        [*base, ("MessageStatus", "read")],
        token="wrong-token",
    )
    assert_error(forged, 401, "invalid_signature")
    assert len(stored(db)) == 3


def test_twilio_inbound_stop_is_logged_with_its_action_and_replies(
    client: TestClient, db: Database
) -> None:
    make_source(db, "tw", "twilio", secret=TOKEN, config={"replies": {"STOP": "You're out."}})
    params = [
        ("MessageSid", "SMin1"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", " Stop "),
    ]
    r = _twilio_post(client, "/webhooks/twilio/tw/inbound", params)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    assert "<Message>You're out.</Message>" in r.text
    r = _twilio_post(
        client,
        "/webhooks/twilio/tw/inbound",
        [("MessageSid", "SMin2"), ("From", "+14155550100"), ("Body", "hello")],
    )
    assert r.text.endswith("<Response/>")
    first, second = stored(db)
    assert first.properties["keyword_action"] == "unsubscribe"
    assert first.contact == "+14155550100"
    assert "keyword" not in second.properties


def test_twilio_decodes_each_form_body_once(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify and parse share one decode of the body (it used to be parsed twice)."""
    make_source(db, "tw", "twilio", secret=TOKEN)
    decoded: list[bytes] = []

    def counted(body: bytes) -> list[tuple[str, str]]:
        decoded.append(body)
        return form_body(body)

    monkeypatch.setattr(twilio, "form_body", counted)
    params = [("MessageSid", "SMonce"), ("From", "+14155550199"), ("MessageStatus", "sent")]
    assert _twilio_post(client, "/webhooks/twilio/tw/status", params).status_code == 200
    inbound = [("MessageSid", "SMonce2"), ("From", "+14155550100"), ("Body", "hi")]
    assert _twilio_post(client, "/webhooks/twilio/tw/inbound", inbound).status_code == 200
    assert decoded == [urlencode(params).encode(), urlencode(inbound).encode()]
    assert [e.vendor_event for e in stored(db)] == ["sms:sent", "sms:received"]


def test_twilio_public_base_url_behind_a_proxy(database_url: str, db: Database) -> None:
    from engagehub.app import create_app
    from engagehub.settings import Settings

    make_source(db, "tw", "twilio", secret=TOKEN)
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        public_base_url="https://hooks.example.com/engage",
    )
    params = [("MessageSid", "SMp"), ("MessageStatus", "sent"), ("To", "+14155550100")]
    public = "https://hooks.example.com/engage/webhooks/twilio/tw/status"
    signature = RequestValidator(TOKEN).compute_signature(public, dict(params))
    with TestClient(create_app(settings)) as proxied:
        r = proxied.post(
            "/webhooks/twilio/tw/status",
            content=urlencode(params),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert r.status_code == 200, r.text


def test_braze_http_connector_protocol(client: TestClient, db: Database) -> None:
    make_source(db, "bz", "braze", secret="braze-bearer-secret")
    auth = {"Authorization": "Bearer braze-bearer-secret"}
    body = (CASES / "braze" / "http_connector_batch.json").read_bytes()
    assert_error(client.post("/webhooks/braze-currents/bz", content=body), 401, "invalid_signature")
    assert_error(
        client.post(
            "/webhooks/braze-currents/bz", content=body, headers={"Authorization": "Bearer nope"}
        ),
        401,
        "invalid_signature",
    )
    details = assert_error(
        client.post("/webhooks/braze-currents/bz", content=body, headers=auth),
        400,
        "validation_failed",
    )
    assert details["accepted"] == 5
    assert [r["index"] for r in details["rejected"]] == [5, 6]
    good = orjson.dumps({"events": orjson.loads(body)["events"][:5]})
    r = client.post("/webhooks/braze-currents/bz", content=good, headers=auth)
    assert r.status_code == 200
    assert len(stored(db)) == 5
    many = orjson.dumps(
        {
            "events": [
                {"event_type": "users.messages.email.Open", "id": str(i), "time": 1}
                for i in range(101)
            ]
        }
    )
    assert_error(
        client.post("/webhooks/braze-currents/bz", content=many, headers=auth),
        413,
        "payload_too_large",
    )
    assert len(stored(db)) == 5


def test_moengage_streams(client: TestClient, db: Database) -> None:
    make_source(db, "moe", "moengage", secret="moe-secret")
    body = (CASES / "moengage" / "streams_batch.json").read_bytes()
    assert_error(client.post("/webhooks/moengage/moe", content=body), 401, "invalid_signature")
    for _ in range(2):
        r = client.post(
            "/webhooks/moengage/moe", content=body, headers={"Authorization": "Bearer moe-secret"}
        )
        assert r.status_code == 200
        assert r.json()["accepted"] == 6
    assert len(stored(db)) == 6
    wrong_kind = client.post("/webhooks/sendgrid/moe", content=b"[]")
    assert_error(wrong_kind, 403, "forbidden")
