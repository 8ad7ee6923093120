"""Our own sends feed the list too: Twilio refusing a number (21211) suppresses it, so the
next message to it is dropped before any provider call."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.messaging.conftest import FakeApi, subscribe
from tests.suppression.test_api import listed, settle

SMS = {"name": "sms-promo", "channel": "sms", "body": "Hi"}


def test_twilio_invalid_number_at_send_time_suppresses(
    provider_client: TestClient, admin: dict[str, str], twilio_api: FakeApi
) -> None:
    client = provider_client
    assert client.post("/api/templates", json=SMS, headers=admin).status_code == 201
    subscribe(client, admin, "+14155550177", kind="SMS")
    twilio_api.status_for["+14155550177"] = (400, 21211)
    r = client.post(
        "/api/sends", json={"template": "sms-promo", "to": "+14155550177"}, headers=admin
    )
    assert r.json()["state"] == "failed", r.text
    mid = r.json()["message_id"]
    [failed] = client.get("/api/events", params={"message_id": mid}, headers=admin).json()["events"]
    assert (failed["event"], failed["properties"]["error_code"]) == ("SMS Failed", "21211")
    settle(client)
    [entry] = listed(client, admin, channel="sms")
    assert (entry["contact"], entry["reason"]) == ("+14155550177", "invalid_number")
    assert entry["source"] == "engagehub"
    calls = len(twilio_api.requests)
    again = client.post(
        "/api/sends", json={"template": "sms-promo", "to": "+14155550177"}, headers=admin
    )
    assert again.json()["error"] == "suppressed: invalid_number (21211 Invalid 'To' Phone Number)"
    assert len(twilio_api.requests) == calls  # never reached Twilio
