"""Scheduled broadcasts: created or scheduled for a time, started by the messaging service
once that time has come (not before), unscheduled back to a draft; errors name the value."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engagehub.hub import Hub
from engagehub.messaging import broadcasts
from engagehub.messaging.service import MessagingService
from engagehub.timeutil import format_ts, now_ms
from tests.conftest import app_hub, assert_error
from tests.messaging.conftest import Sink
from tests.messaging.test_broadcasts import PROMO, drain
from tests.waiting import eventually


def _setup(client: TestClient, admin: dict[str, str], people: int = 3) -> None:
    items = [
        {"key": f"p{i}@example.com", "type": "EMAIL", "status": "SUBSCRIBED"} for i in range(people)
    ]
    r = client.put("/api/subscriptions", json={"subscriptions": items}, headers=admin)
    assert r.status_code == 200, r.text
    tpl = {**PROMO, "subject": "Hi {{ profile.first_name | default: 'you' }}"}
    assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    aud = {"name": "all", "channel": "email"}
    assert client.post("/api/audiences", json=aud, headers=admin).status_code == 201


def test_a_scheduled_broadcast_starts_by_itself_when_due(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    hub: Hub = app_hub(client)
    _setup(client, admin)
    later = format_ts(now_ms() + 3_600_000)
    body = {"name": "later", "template": "promo", "audience": "all", "start_at": later}
    r = client.post("/api/broadcasts", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["state"], r.json()["scheduled_at"]) == ("scheduled", later)
    service = MessagingService(hub.settings)
    drain(hub, service)
    assert client.get("/api/broadcasts/later", headers=admin).json()["state"] == "scheduled"
    assert smtp_sink.messages == []

    # Moved to a time already past: the next service round starts and sends it.
    soon = format_ts(now_ms() - 1000)
    r = client.post("/api/broadcasts/later/schedule", json={"at": soon}, headers=admin)
    assert (r.json()["state"], r.json()["scheduled_at"]) == ("scheduled", soon), r.text

    def finished() -> dict[str, object] | None:
        """Service rounds until the broadcast is done (recipients may still be settling)."""
        drain(hub, service)
        found: dict[str, object] = client.get("/api/broadcasts/later", headers=admin).json()
        return found if found["state"] == "done" else None

    status = eventually(finished, what="the scheduled broadcast to finish")
    assert status["state"] == "done"
    assert status["counts"] == {"sent": 3}
    assert len(smtp_sink.messages) == 3
    assert status["started_at"] >= soon
    drain(hub, service)  # a started broadcast is not started again
    assert len(smtp_sink.messages) == 3
    assert_error(
        client.post("/api/broadcasts/later/schedule", json={"at": soon}, headers=admin),
        409,
        "conflict",
    )


def test_unschedule_and_bad_times(client: TestClient, admin: dict[str, str]) -> None:
    hub: Hub = app_hub(client)
    _setup(client, admin, people=1)
    body = {"name": "b", "template": "promo", "audience": "all"}
    assert client.post("/api/broadcasts", json=body, headers=admin).json()["state"] == "draft"
    details = assert_error(
        client.post("/api/broadcasts/b/schedule", json={"at": "next tuesday"}, headers=admin),
        400,
        "invalid_payload",
    )
    assert details["value"] == "next tuesday"
    bad = {**body, "name": "c", "start_at": "soon"}
    assert (
        assert_error(
            client.post("/api/broadcasts", json=bad, headers=admin), 400, "invalid_payload"
        )["value"]
        == "soon"
    )
    r = client.post("/api/broadcasts/b/schedule", json={"at": "2999-01-01T09:00"}, headers=admin)
    assert r.json()["scheduled_at"] == "2999-01-01T09:00:00.000Z", r.text
    r = client.post("/api/broadcasts/b/unschedule", headers=admin)
    assert (r.json()["state"], r.json()["scheduled_at"]) == ("draft", None), r.text
    with hub.db.session() as conn:
        assert broadcasts.start_due(conn, 10**15) == []  # a draft never starts by itself
    again = client.post("/api/broadcasts/b/unschedule", headers=admin)  # already a draft: fine
    assert (again.status_code, again.json()["state"]) == (200, "draft")
    client.post("/api/broadcasts/b/start", headers=admin)
    assert_error(client.post("/api/broadcasts/b/unschedule", headers=admin), 409, "conflict")
    assert_error(client.post("/api/broadcasts/b/launch", headers=admin), 404, "not_found")


def test_a_scheduled_broadcast_that_cannot_start_becomes_a_draft(
    client: TestClient, admin: dict[str, str]
) -> None:
    hub: Hub = app_hub(client)
    _setup(client, admin, people=1)
    body = {"name": "gone", "template": "promo", "audience": "all", "start_at": "2000-01-01"}
    assert client.post("/api/broadcasts", json=body, headers=admin).status_code == 201
    with hub.db.session() as conn, conn.transaction():
        conn.execute("DELETE FROM message_templates WHERE name = 'promo'")
    with hub.db.session() as conn:
        assert broadcasts.start_due(conn, now_ms()) == []
        assert broadcasts.status(conn, "gone")["state"] == "draft"
