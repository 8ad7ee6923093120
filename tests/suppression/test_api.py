"""Suppression list end to end: signed vendor webhooks, the processor, the API, sending."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from tests.conftest import app_hub, assert_error, make_source, settle
from tests.ingest.test_webhooks import TOKEN
from tests.messaging.conftest import Sink, subscribe
from tests.vendors.signing import SendGridSigner

PROMO = {"name": "promo", "channel": "email", "subject": "Hi", "text": "Deals"}
RECEIPT = {
    "name": "receipt",
    "channel": "email",
    "kind": "transactional",
    "subject": "R",
    "text": "Thanks",
}


def sendgrid_hook(client: TestClient, signer: SendGridSigner, *items: dict[str, Any]) -> None:
    raw = orjson.dumps(list(items))
    r = client.post("/webhooks/sendgrid/sg", content=raw, headers=signer.headers(raw))
    assert r.status_code == 200, r.text
    settle(client)


def listed(client: TestClient, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/suppressions", params=params, headers=admin)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["suppressions"]
    return rows


def test_hard_bounce_suppresses_sends_before_consent_and_names_the_reason(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    hub = app_hub(client)
    signer = SendGridSigner()
    make_source(hub.db, "sg", "sendgrid", secret=signer.public)
    for tpl in (PROMO, RECEIPT):
        assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    now = int(time.time())
    sendgrid_hook(
        client,
        signer,
        {
            "email": "Ada@Example.com",
            "event": "bounce",
            "type": "bounce",
            "timestamp": now,
            "sg_event_id": "b1",
            "reason": "550 5.1.1 The email account does not exist",
        },
    )
    [entry] = listed(client, admin)
    assert entry["contact"] == "ada@example.com"
    assert entry["channel"] == "email"
    assert entry["reason"] == "hard_bounce"
    assert entry["source"] == "sg"
    assert entry["active"]
    assert entry["expires_at"] is None

    for template in ("promo", "receipt"):  # transactional mail is not sent either
        r = client.post(
            "/api/sends", json={"template": template, "to": "ada@example.com"}, headers=admin
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "dropped"
        assert body["error"].startswith("suppressed: hard_bounce (550 5.1.1")
        ev = client.get(
            "/api/events", params={"message_id": body["message_id"]}, headers=admin
        ).json()["events"]
        assert [e["event"] for e in ev] == ["Email Dropped"]
        assert ev[0]["properties"]["drop_reason"] == "suppressed"
    assert smtp_sink.to("ada@example.com") == []

    # operators lift it; consent still has its own say (the bounce policy unsubscribed her)
    r = client.request(
        "DELETE",
        "/api/suppressions",
        json={"suppressions": [{"contact": "ADA@example.com", "channel": "email"}]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["successes"][0]["contact"] == "ada@example.com"
    assert listed(client, admin) == []
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "ada@example.com"}, headers=admin
    )
    assert r.json()["error"] == "not_subscribed: email is unsubscribed", r.text

    # an operator's entry on a subscribed address, lifted by DELETE with query parameters
    subscribe(client, admin, "bob@example.com")
    r = client.put(
        "/api/suppressions",
        json={"contact": "bob@example.com", "channel": "EMAIL", "detail": "legal hold"},
        headers=admin,
    )
    assert r.json()["successes"][0]["reason"] == "manual", r.text
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "bob@example.com"}, headers=admin
    )
    assert r.json()["error"] == "suppressed: manual (legal hold)", r.text
    r = client.delete(
        "/api/suppressions",
        params={"contact": "bob@example.com", "channel": "email"},
        headers=admin,
    )
    assert r.json()["successes"], r.text
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "bob@example.com"}, headers=admin
    )
    assert r.json()["state"] == "sent", r.text
    assert len(smtp_sink.to("bob@example.com")) == 1
    kinds = [
        h["kind"]
        for h in client.get(
            "/api/suppressions/history", params={"contact": "ada@example.com"}, headers=admin
        ).json()["history"]
    ]
    assert kinds == ["lift", "suppress"]


def test_bounce_arriving_after_a_later_delivery_does_not_suppress(
    client: TestClient, admin: dict[str, str]
) -> None:
    hub = app_hub(client)
    signer = SendGridSigner()
    make_source(hub.db, "sg", "sendgrid", secret=signer.public)
    now = int(time.time())
    bob = {"email": "bob@example.com", "timestamp": now}
    sendgrid_hook(client, signer, {**bob, "event": "delivered", "sg_event_id": "d1"})
    sendgrid_hook(
        client,
        signer,
        {**bob, "event": "bounce", "type": "bounce", "sg_event_id": "b0", "timestamp": now - 3600},
    )
    assert listed(client, admin) == []
    # and the other way round: a delivery newer than a stored bounce lifts it
    eve = {"email": "eve@example.com", "timestamp": now - 60}
    sendgrid_hook(client, signer, {**eve, "event": "bounce", "type": "bounce", "sg_event_id": "b2"})
    assert [e["contact"] for e in listed(client, admin)] == ["eve@example.com"]
    sendgrid_hook(
        client, signer, {**eve, "event": "delivered", "sg_event_id": "d2", "timestamp": now}
    )
    assert listed(client, admin) == []
    # a spam complaint is not lifted by deliveries
    sendgrid_hook(
        client, signer, {**eve, "event": "spamreport", "sg_event_id": "s2", "timestamp": now + 1}
    )
    sendgrid_hook(
        client, signer, {**eve, "event": "delivered", "sg_event_id": "d3", "timestamp": now + 2}
    )
    assert [e["reason"] for e in listed(client, admin)] == ["spam_complaint"]


def test_twilio_unreachable_number_suppresses_the_sms_channel(
    client: TestClient, admin: dict[str, str]
) -> None:
    make_source(app_hub(client).db, "tw", "twilio", secret=TOKEN)
    params = [
        ("MessageSid", "SM30003"),
        ("MessageStatus", "undelivered"),
        ("To", "+14155550100"),
        ("From", "+14155550199"),
        ("ErrorCode", "30003"),
        ("ErrorMessage", "Unreachable destination handset"),
    ]
    path = "/webhooks/twilio/tw/status"
    signature = RequestValidator(TOKEN).compute_signature("https://hub.test" + path, dict(params))
    r = client.post(path, data=dict(params), headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200, r.text
    settle(client)
    [entry] = listed(client, admin, channel="SMS")
    assert (entry["contact"], entry["reason"]) == ("+14155550100", "unreachable")
    assert entry["detail"] == "30003 Unreachable destination handset"
    assert listed(client, admin, contact="(415) 555-0100")[0]["contact"] == "+14155550100"
    assert listed(client, admin, channel="email") == []


def test_put_validates_each_item_and_keeps_the_good_ones(
    client: TestClient, admin: dict[str, str]
) -> None:
    r = client.put(
        "/api/suppressions",
        headers=admin,
        json={
            "suppressions": [
                {
                    "contact": "a@example.com",
                    "channel": "email",
                    "reason": "manual",
                    "detail": "asked",
                },
                {"contact": "not-an-email", "channel": "email"},
                {"contact": "b@example.com", "channel": "fax"},
                {"contact": "c@example.com", "channel": "email", "reason": "because"},
                {"contact": "+14155550101", "channel": "sms", "expires_at": "2999-01-01T00:00:00Z"},
                {"contact": "d@example.com", "channel": "email", "expires_at": "2001-01-01"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["index"] for s in body["successes"]] == [0, 4, 5]
    fails = {f["index"]: f["error"] for f in body["failures"]}
    assert set(fails) == {1, 2, 3}
    assert fails[2]["details"] == {"field": "channel", "value": "fax"}
    assert fails[3]["details"]["value"] == "because"
    rows = listed(client, admin)
    assert [r["contact"] for r in rows] == ["+14155550101", "a@example.com"]
    assert rows[0]["expires_at"] == "2999-01-01T00:00:00.000Z"
    expired = listed(client, admin, include_expired="true")
    assert [r["contact"] for r in expired][-1] == "d@example.com"
    assert not expired[-1]["active"]
    # paging
    first = client.get("/api/suppressions", params={"limit": 1}, headers=admin).json()
    nxt = client.get(
        "/api/suppressions", params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin
    ).json()
    assert [r["contact"] for r in first["suppressions"] + nxt["suppressions"]] == [
        "+14155550101",
        "a@example.com",
    ]
    assert nxt["next_cursor"] is None  # an exactly full last page offers no empty next page
    assert_error(
        client.put("/api/suppressions", content=b"{nope", headers=admin), 400, "invalid_payload"
    )
    assert_error(
        client.put("/api/suppressions", json={"suppressions": []}, headers=admin),
        400,
        "invalid_payload",
    )
    assert_error(
        client.get("/api/suppressions", params={"channel": "fax"}, headers=admin),
        400,
        "invalid_payload",
    )
    assert client.get("/api/suppressions").status_code == 401


def test_csv_export_and_import_round_trip(client: TestClient, admin: dict[str, str]) -> None:
    csv_in = (
        "contact,channel,reason,detail,expires_at\n"
        'a@example.com,email,spam_complaint,=HYPERLINK("x"),\n'
        "+14155550102,sms,invalid_number,,\n"
        "bad,email,,,\n"
        "c@example.com,email,manual,,never\n"
    )
    r = client.post("/api/suppressions/import", content=csv_in.encode(), headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["applied"], body["rejected"]) == (2, 2)
    assert [e["row"] for e in body["errors"]] == [4, 5]
    assert body["errors"][1]["error"]["details"]["field"] == "expires_at"
    exported = client.get("/api/suppressions", params={"format": "csv"}, headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == "contact,channel,reason,detail,expires_at,source,since"
    assert lines[1].startswith("'+14155550102,sms,invalid_number")  # neutralised for sheets
    assert "'=HYPERLINK" in lines[2]
    # the export imports again unchanged (into a fresh list after deleting)
    client.request(
        "DELETE",
        "/api/suppressions",
        headers=admin,
        json=[
            {"contact": "a@example.com", "channel": "email"},
            {"contact": "+14155550102", "channel": "sms"},
        ],
    )
    assert listed(client, admin) == []
    again = client.post("/api/suppressions/import", content=exported.content, headers=admin)
    assert again.json()["applied"] == 2, again.text
    rows = listed(client, admin)
    assert [(r["contact"], r["reason"]) for r in rows] == [
        ("+14155550102", "invalid_number"),
        ("a@example.com", "spam_complaint"),
    ]
    assert rows[1]["detail"] == '=HYPERLINK("x")'
    bad = client.post("/api/suppressions/import", content=b"email,status\nx,y\n", headers=admin)
    assert_error(bad, 400, "invalid_payload")
