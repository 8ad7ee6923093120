"""Journeys: trigger -> send -> wait (durable timer) -> send, exit on the goal event."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engagehub.hub import Hub
from engagehub.messaging.service import MessagingService
from tests.conftest import app_hub, assert_error, make_source
from tests.messaging.conftest import Sink, subscribe
from tests.waiting import eventually

CART = {
    "name": "abandoned-cart",
    "channel": "email",
    "trigger": {"event": "Cart Abandoned"},
    "steps": [{"send": "cart-1"}, {"wait": "1h"}, {"send": "cart-2"}],
    "goal": "Order Completed",
}


def runs(client: TestClient, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = client.get("/api/journeys/abandoned-cart", headers=admin)
    assert r.status_code == 200, r.text
    return {p["contact"]: p for p in r.json()["people"]}


def wait_for(client: TestClient, admin: dict[str, str], check: Any) -> dict[str, dict[str, Any]]:
    def matched() -> dict[str, dict[str, Any]] | None:
        found = runs(client, admin)
        return found if check(found) else None

    done: dict[str, dict[str, Any]] = eventually(matched, 10, 0.01, what="journey runs")
    return done


def test_journey_sends_waits_and_exits_on_goal(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    hub: Hub = app_hub(client)
    _, key = make_source(hub.db)
    for n in (1, 2):
        tpl = {
            "name": f"cart-{n}",
            "channel": "email",
            "subject": f"Reminder {n}: {{{{ event.item }}}}",
            "text": "Come back",
        }
        assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    assert client.post("/api/journeys", json=CART, headers=admin).status_code == 201
    assert_error(client.post("/api/journeys", json=CART, headers=admin), 409, "conflict")
    bad = {**CART, "name": "bad", "steps": [{"wait": "soon"}]}
    assert_error(client.post("/api/journeys", json=bad, headers=admin), 400, "invalid_payload")

    for who in ("ada", "bo"):
        subscribe(client, admin, f"{who}@example.com")
        r = client.post(
            "/v1/track",
            json={
                "userId": who,
                "event": "Cart Abandoned",
                "properties": {"email": f"{who}@example.com", "item": "shoes"},
            },
            auth=(key, ""),
        )
        assert r.status_code == 200, r.text
    wait_for(client, admin, lambda f: len(f) == 2)

    service = MessagingService(hub.settings)
    service.run_once(hub.db)
    service.run_once(hub.db)
    for who in ("ada", "bo"):
        [msg] = smtp_sink.to(f"{who}@example.com")
        assert msg["Subject"] == "Reminder 1: shoes"
    found = runs(client, admin)
    assert {p["state"] for p in found.values()} == {"active"}
    assert found["ada@example.com"]["step"] == 2

    r = client.post(
        "/v1/track",
        json={
            "userId": "ada",
            "event": "Order Completed",
            "properties": {"email": "ada@example.com"},
        },
        auth=(key, ""),
    )
    assert r.status_code == 200
    wait_for(client, admin, lambda f: f["ada@example.com"]["state"] == "converted")

    # the timer is a row: a new service instance (a restarted process) picks it up when due
    with hub.db.writer() as conn:
        conn.execute("UPDATE journey_runs SET due_at = 0")
    fresh = MessagingService(hub.settings)
    fresh.run_once(hub.db)
    fresh.run_once(hub.db)
    assert len(smtp_sink.to("ada@example.com")) == 1
    assert [m["Subject"] for m in smtp_sink.to("bo@example.com")] == [
        "Reminder 1: shoes",
        "Reminder 2: shoes",
    ]
    found = runs(client, admin)
    assert found["bo@example.com"]["state"] == "completed"
    assert found["ada@example.com"]["exit_reason"] == "goal"
    body = client.get("/api/journeys", headers=admin).json()["journeys"][0]
    assert body["runs"] == {"completed": 1, "converted": 1}
    lifecycle = client.get(
        "/api/events", params={"channel": "journey", "order": "asc"}, headers=admin
    ).json()["events"]
    assert sorted((e["event"], e["contact"]) for e in lifecycle) == [
        ("Journey Converted", "ada@example.com"),
        ("Journey Entered", "ada@example.com"),
        ("Journey Entered", "bo@example.com"),
    ]
