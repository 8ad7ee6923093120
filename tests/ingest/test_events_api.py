"""Management API: events, unmapped counts, taxonomy, sources — all behind the admin token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.conftest import app_hub, assert_error, make_source
from tests.ingest.test_segment_api import basic, track


def test_events_api_filters_and_renders(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    _, key = make_source(db)
    batch = [track("m1", properties={"campaign_id": "c1"}), track("m2", event="Order Completed")]
    assert client.post("/v1/batch", json={"batch": batch}, headers=basic(key)).status_code == 200
    r = client.get("/api/events", params={"campaign_id": "c1"}, headers=admin)
    assert r.status_code == 200
    (event,) = r.json()["events"]
    assert event["event"] == "Email Opened"
    assert event["source"] == "web"
    assert event["timestamp"] == "2026-03-01T00:00:00.000Z"
    assert event["raw"]["messageId"] == "m1"
    r = client.get("/api/events", params={"unmapped": "true"}, headers=admin)
    assert [e["vendor_event"] for e in r.json()["events"]] == ["Order Completed"]
    assert_error(
        client.get("/api/events", params={"since": "soon"}, headers=admin), 400, "invalid_payload"
    )
    assert_error(
        client.get("/api/events", params={"limit": 0}, headers=admin), 400, "invalid_payload"
    )
    assert_error(
        client.get("/api/events", params={"source": "nope"}, headers=admin), 404, "not_found"
    )


def test_unmapped_counter_via_api(client: TestClient, db: Database, admin: dict[str, str]) -> None:
    _, key = make_source(db)
    batch = [track(f"m{i}", event="Order Completed") for i in range(3)]
    assert client.post("/v1/batch", json={"batch": batch}, headers=basic(key)).status_code == 200
    hub = app_hub(client)
    client.portal.call(hub.caught_up, 3)  # type: ignore[union-attr]
    r = client.get("/api/events/unmapped", headers=admin)
    assert r.json()["unmapped"][0]["vendor_event"] == "Order Completed"
    assert r.json()["unmapped"][0]["count"] == 3


def test_management_routes_need_the_admin_token(client: TestClient) -> None:
    for path in ("/api/events", "/api/events/unmapped", "/api/taxonomy", "/api/sources"):
        assert_error(client.get(path), 401, "unauthorized")
        assert_error(
            client.get(path, headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
        )


def test_taxonomy_and_sources(client: TestClient, admin: dict[str, str]) -> None:
    data = client.get("/api/taxonomy", headers=admin).json()
    names = {e["name"]: e for e in data["events"]}
    assert "users.messages.email.Open" in names["Email Opened"]["vendor_names"]["braze"]
    r = client.post("/api/sources", json={"name": "feed", "kind": "crossengage"}, headers=admin)
    assert r.status_code == 201
    assert len(r.json()["write_key"]) >= 20
    details = assert_error(
        client.post("/api/sources", json={"name": "x", "kind": "fax"}, headers=admin),
        400,
        "invalid_payload",
    )
    assert details["value"] == "fax"
    assert_error(
        client.post("/api/sources", json={"name": "feed", "kind": "segment"}, headers=admin),
        409,
        "conflict",
    )
    listed = client.get("/api/sources", headers=admin).json()["sources"]
    assert [s["name"] for s in listed] == ["engagehub", "feed"]  # the built-in consent source
    assert "write_key" not in listed[1]
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"


def test_rotate_a_write_key_and_replace_a_secret(client: TestClient, admin: dict[str, str]) -> None:
    old = client.post("/api/sources", json={"name": "web", "kind": "segment"}, headers=admin)
    old_key = old.json()["write_key"]
    track = {"event": "Email Opened", "userId": "u1"}
    assert client.post("/v1/track", json={**track, "writeKey": old_key}).status_code == 200
    r = client.post("/api/sources/web/rotate-key", headers=admin)
    assert r.status_code == 200, r.text
    new_key = r.json()["write_key"]
    assert new_key != old_key
    assert_error(client.post("/v1/track", json={**track, "writeKey": old_key}), 401, "unauthorized")
    assert client.post("/v1/track", json={**track, "writeKey": new_key}).status_code == 200
    listed = {s["name"]: s for s in client.get("/api/sources", headers=admin).json()["sources"]}
    assert listed["web"]["write_key_hint"] == new_key[:4] + "…"
    assert listed["web"]["events_today"] == 2
    assert listed["web"]["last_event_at"] is not None
    assert listed["engagehub"]["events_today"] == 0
    client.post("/api/sources", json={"name": "sms", "kind": "twilio"}, headers=admin)
    r = client.post("/api/sources/sms/secret", json={"secret": "tok"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["has_secret"] is True
    assert_error(client.post("/api/sources/nope/rotate-key", headers=admin), 404, "not_found")
    assert_error(
        client.post("/api/sources/sms/secret", json={}, headers=admin), 400, "invalid_payload"
    )
