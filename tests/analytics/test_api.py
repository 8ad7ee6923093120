"""Analytics over HTTP: real Segment, SendGrid (signed) and Braze ingest linked by message id."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.cases import CASES
from tests.conftest import assert_error, basic, make_source
from tests.vendors.signing import SendGridSigner

T = 1772445600  # 2026-03-02T10:00:00Z


def track(mid: str, event: str, ts: int, user: str = "u1", **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": f"{mid}-{event}-{ts}",
        "timestamp": ts * 1000,
        "properties": props,
    }


def sent(mid: str, user: str, variation: str, ts: int = T) -> dict[str, Any]:
    return track(
        mid,
        "Email Sent",
        ts,
        user,
        message_id=mid,
        campaign_id="spring",
        campaign_name="Spring sale",
        variation_id=variation,
    )


def sendgrid(mid: str, email: str, event: str, ts: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": ts,
        "event": event,
        "sg_event_id": f"sg-{mid}-{event}-{ts}",
        "sg_message_id": f"prov-{mid}",
        "engagehub_message_id": mid,
        **extra,
    }


def ingest_story(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    signer = SendGridSigner()
    make_source(db, "sg", "sendgrid", secret=signer.public)
    # SendGrid reports arrive first (out of order): campaign and variation come later.
    body = orjson.dumps(
        [
            sendgrid("m1", "ada@example.com", "delivered", T + 60),
            sendgrid("m1", "ada@example.com", "open", T + 3600),
            sendgrid("m1", "ada@example.com", "open", T + 3700),
            sendgrid("m1", "ada@example.com", "click", T + 3800, url="https://shop.test/spring"),
            sendgrid("m2", "bob@example.com", "delivered", T + 61),
            sendgrid("m3", "cy@example.com", "bounce", T + 5, reason="550 5.1.1 unknown user"),
        ]
    )
    r = client.post("/webhooks/sendgrid/sg", content=body, headers=signer.headers(body))
    assert r.status_code == 200, r.text
    batch = [
        sent("m1", "u1", "A"),
        sent("m2", "u2", "B"),
        sent("m3", "u3", "B"),
        track("o1", "Order Completed", T + 7200, "u1", coupon="SPRING", total=30),
        track("o2", "Order Completed", T + 7200, "u2", coupon="OTHER", total=10),
    ]
    r = client.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert r.status_code == 200, r.text


def test_message_lifecycle_across_vendors(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    ingest_story(client, db)
    r = client.get("/api/messages/m1", headers=admin)
    assert r.status_code == 200, r.text
    msg = r.json()
    assert msg["campaign_id"] == "spring"
    assert msg["variation"] == "A"
    assert msg["contact"] == "ada@example.com"
    assert msg["status"] == "clicked"
    assert msg["milestones"]["sent"] == "2026-03-02T10:00:00.000Z"
    assert msg["milestones"]["delivered"] == "2026-03-02T10:01:00.000Z"
    assert msg["milestones"]["opened"] == "2026-03-02T11:00:00.000Z"
    assert msg["opens_total"] == 2
    assert msg["links"] == [
        {"url": "https://shop.test/spring", "first_clicked": "2026-03-02T11:03:20.000Z"}
    ]
    assert [e["event"] for e in msg["timeline"]] == [
        "Email Sent",
        "Email Delivered",
        "Email Opened",
        "Email Opened",
        "Email Link Clicked",
    ]
    bounced = client.get("/api/messages/m3", headers=admin).json()
    assert bounced["status"] == "bounced"
    assert bounced["bounce_reason"] == "550 5.1.1 unknown user"
    assert_error(client.get("/api/messages/nope", headers=admin), 404, "not_found")
    assert_error(client.get("/api/messages/m1"), 401, "unauthorized")


def test_campaign_stats_filters_and_goals(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    ingest_story(client, db)
    r = client.post(
        "/api/goals",
        json={
            "campaign": "spring",
            "event": "Order Completed",
            "where": "properties.coupon == 'SPRING'",
            "within": "72h",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["backfilled_events"] == 1
    listed = client.get("/api/campaigns", headers=admin).json()["campaigns"]
    assert [c["id"] for c in listed] == ["spring"]
    assert listed[0]["name"] == "Spring sale"
    stats = client.get("/api/campaigns/spring/stats", headers=admin).json()
    t = stats["totals"]
    assert (t["sent"], t["delivered"], t["bounced"]) == (3, 2, 1)
    assert (t["opens_unique"], t["opens_total"], t["clicks_unique"]) == (1, 2, 1)
    assert t["conversions"] == 1
    assert stats["rates"]["delivery_rate"] == round(2 / 3, 4)
    assert stats["rates"]["conversion_rate"] == 0.5
    assert stats["top_links"] == [
        {"url": "https://shop.test/spring", "clicks_unique": 1, "clicks_total": 1}
    ]
    assert stats["bounce_reasons"] == [{"reason": "550 5.1.1 unknown user", "count": 1}]
    assert stats["goals"][0]["conversions"] == 1
    assert stats["series"]["interval"] == "hour"
    assert sum(p["sent"] for p in stats["series"]["points"]) == 3
    variations = {b["variation"]: b["totals"]["sent"] for b in stats["breakdown"]}
    assert variations == {"A": 1, "B": 2}
    only_b = client.get("/api/campaigns/spring/stats?variation=B", headers=admin).json()
    assert only_b["totals"]["sent"] == 2
    assert only_b["totals"]["conversions"] == 0
    later = client.get(
        "/api/campaigns/spring/stats?from=2026-03-02T11:00:00Z&to=2026-03-02T12:00:00Z",
        headers=admin,
    ).json()
    assert (later["totals"]["sent"], later["totals"]["opens_unique"]) == (0, 1)
    sms = client.get("/api/campaigns/spring/stats?channel=sms", headers=admin).json()
    assert sms["totals"]["sent"] == 0
    details = assert_error(
        client.get("/api/campaigns/spring/stats?from=yesterday", headers=admin),
        400,
        "invalid_payload",
    )
    assert details == {"field": "from", "value": "yesterday"}
    assert_error(client.get("/api/campaigns/nope/stats", headers=admin), 404, "not_found")
    assert_error(client.get("/api/campaigns"), 401, "unauthorized")


def test_goal_api_errors_and_delete(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    ingest_story(client, db)
    bad_where = {"campaign": "spring", "event": "Order Completed", "where": "properties.x = 1"}
    details = assert_error(
        client.post("/api/goals", json=bad_where, headers=admin), 400, "invalid_payload"
    )
    assert details["token"] == "="
    bad_within = {"campaign": "spring", "event": "Order Completed", "within": "3 fortnights"}
    details = assert_error(
        client.post("/api/goals", json=bad_within, headers=admin), 400, "invalid_payload"
    )
    assert details == {"field": "within", "value": "3 fortnights"}
    details = assert_error(
        client.post("/api/goals", json={"campaign": "spring"}, headers=admin),
        400,
        "invalid_payload",
    )
    assert details["field"] == "event"
    goal = client.post(
        "/api/goals",
        json={"campaign": "spring", "event": "Order Completed", "within": "72h"},
        headers=admin,
    ).json()
    stats = client.get("/api/campaigns/spring/stats", headers=admin).json()
    assert stats["totals"]["conversions"] == 2  # u1 and u2 both ordered (no filter)
    assert (
        client.get("/api/goals?campaign=spring", headers=admin).json()["goals"][0]["within"]
        == "72h"
    )
    assert client.delete(f"/api/goals/{goal['id']}", headers=admin).status_code == 204
    stats = client.get("/api/campaigns/spring/stats", headers=admin).json()
    assert stats["totals"]["conversions"] == 0
    assert_error(client.delete(f"/api/goals/{goal['id']}", headers=admin), 404, "not_found")


def test_braze_conversion_events_are_imported(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    make_source(db, "bz", "braze", secret="braze-bearer-secret")
    events = orjson.loads((CASES / "braze" / "http_connector_batch.json").read_bytes())["events"]
    send = {**events[0], "properties": {**events[0]["properties"], "canvas_id": "canvas-7"}}
    send["properties"].pop("campaign_id")
    body = orjson.dumps({"events": [send, events[4]]})
    auth = {"Authorization": "Bearer braze-bearer-secret"}
    r = client.post("/webhooks/braze-currents/bz", content=body, headers=auth)
    assert r.status_code == 200, r.text
    stats = client.get("/api/campaigns/canvas-7/stats", headers=admin).json()
    assert stats["totals"]["sent"] == 1
    assert stats["totals"]["conversions"] == 1
    assert stats["goals"] == [{"id": 0, "vendor": True, "conversions": 1}]
    msg = client.get("/api/messages/disp-9:user-42", headers=admin).json()
    assert msg["converted_at"] == "2026-03-02T10:10:00.000Z"


def test_twilio_callbacks_link_by_m_parameter_and_message_sid(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    """Out of order: a callback known only by MessageSid first, then ``?m=`` links it."""
    from tests.ingest.test_webhooks import TOKEN, _twilio_post

    make_source(db, "tw", "twilio", secret=TOKEN)
    _, key = make_source(db)
    base = [("MessageSid", "SM77"), ("AccountSid", "AC1"), ("To", "+14155550100")]
    r = _twilio_post(client, "/webhooks/twilio/tw/status", [*base, ("MessageStatus", "delivered")])
    assert r.status_code == 200, r.text
    sms = track("s1", "SMS Sent", T, "u1", message_id="sms-1", campaign_id="promo")
    assert client.post("/v1/batch", json={"batch": [sms]}, headers=basic(key)).status_code == 200
    before = client.get("/api/campaigns/promo/stats", headers=admin).json()["totals"]
    assert (before["sent"], before["delivered"]) == (1, 0)  # SM77 is not linked yet
    r = _twilio_post(
        client, "/webhooks/twilio/tw/status?m=sms-1", [*base, ("MessageStatus", "sent")]
    )
    assert r.status_code == 200, r.text
    msg = client.get("/api/messages/SM77", headers=admin).json()
    assert msg["message_id"] == "sms-1"
    assert msg["provider_ids"] == ["SM77"]
    assert msg["status"] == "delivered"
    after = client.get("/api/campaigns/promo/stats", headers=admin).json()["totals"]
    assert (after["sent"], after["delivered"]) == (1, 1)
