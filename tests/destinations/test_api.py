"""``/api/destinations`` through the real ASGI app, the SSRF guard, and delivery inside serve."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from engagehub.destinations.guard import check_url
from engagehub.errors import PayloadError
from tests.conftest import assert_error
from tests.destinations.receiver import Receiver
from tests.waiting import eventually


def test_add_list_replay_delete(client: TestClient, admin: dict[str, str], hook: Receiver) -> None:
    body = {"name": "hook", "kind": "webhook", "url": hook.url, "secret": "s3cret", "batch": 10}
    created = client.post("/api/destinations", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["has_secret"] is True
    assert "secret" not in created.json()
    assert_error(client.post("/api/destinations", json=body, headers=admin), 409, "conflict")
    write_key = client.post(
        "/api/sources", json={"name": "web", "kind": "segment"}, headers=admin
    ).json()["write_key"]
    sent = client.post(
        "/v1/track",
        json={"event": "Email Opened", "userId": "u1", "messageId": "m1"},
        auth=(write_key, ""),
    )
    assert sent.status_code == 200, sent.text
    hook.wait_for(1)  # delivered by the background service inside the app
    assert [e["event"] for e in hook.received[0].json()["events"]] == ["Email Opened"]
    eventually(
        lambda: client.get("/api/destinations/hook", headers=admin).json()["delivered"] == 1,
        5,
        0.02,
        what="delivered == 1",
    )
    listed = client.get("/api/destinations", headers=admin).json()["destinations"]
    assert [(d["name"], d["lag"]) for d in listed] == [("hook", 0)]
    replayed = client.post("/api/destinations/hook/replay", json={"from": 0}, headers=admin)
    assert replayed.json()["cursor"] == 0
    hook.wait_for(2)
    assert client.get("/api/destinations/hook/dead-letters", headers=admin).json() == {
        "dead_letters": []
    }
    assert client.delete("/api/destinations/hook", headers=admin).status_code == 200
    assert_error(client.get("/api/destinations/hook", headers=admin), 404, "not_found")


def test_bad_input(client: TestClient, admin: dict[str, str]) -> None:
    assert_error(client.get("/api/destinations"), 401, "unauthorized")
    bad = {"name": "x", "kind": "webhook", "url": "ftp://example.com/x", "secret": "s"}
    details = assert_error(
        client.post("/api/destinations", json=bad, headers=admin), 400, "invalid_payload"
    )
    assert details["value"] == "ftp://example.com/x"
    no_host = {**bad, "url": "http:///path"}
    assert_error(
        client.post("/api/destinations", json=no_host, headers=admin), 400, "invalid_payload"
    )
    no_secret = {**bad, "url": "http://127.0.0.1:9/x", "secret": None}
    details = assert_error(
        client.post("/api/destinations", json=no_secret, headers=admin), 400, "invalid_payload"
    )
    assert details["field"] == "secret"
    replay = client.post("/api/destinations/none/replay", json={}, headers=admin)
    assert_error(replay, 404, "not_found")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "https://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "nats://192.168.1.5:4222",
    ],
)
def test_ssrf_guard_refuses_private_targets(url: str) -> None:
    kind = "nats" if url.startswith("nats") else "webhook"
    with pytest.raises(PayloadError) as caught:
        check_url(url, kind, allow_private=False)
    assert caught.value.details["value"] == url
    assert "ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS" in caught.value.message
    check_url(url, kind, allow_private=True)  # explicitly allowed


def test_unresolvable_host() -> None:
    with pytest.raises(PayloadError, match="does not resolve"):
        check_url("https://no-such-host.invalid/x", "webhook", allow_private=True)


def test_pause_resume_and_replay_one_dead_letter(
    client: TestClient, admin: dict[str, str], hook: Receiver
) -> None:
    hook.script = [("status", 400)]
    body = {"name": "hook", "kind": "webhook", "url": hook.url, "secret": "s3cret", "batch": 10}
    assert client.post("/api/destinations", json=body, headers=admin).status_code == 201
    key = client.post(
        "/api/sources", json={"name": "web", "kind": "segment"}, headers=admin
    ).json()["write_key"]
    event = {"event": "Email Opened", "userId": "u1", "messageId": "m1"}
    assert client.post("/v1/track", json=event, auth=(key, "")).status_code == 200
    letters = eventually(
        lambda: client.get("/api/destinations/hook/dead-letters", headers=admin).json()[
            "dead_letters"
        ],
        10,
        what="a dead letter",
    )
    paused = client.post("/api/destinations/hook/pause", headers=admin)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    one = {"dead_letter_id": letters[0]["id"]}
    assert client.post("/api/destinations/hook/replay", json=one, headers=admin).json() == {
        "destination": "hook",
        "dead_letters": 1,
    }
    time.sleep(0.5)
    assert hook.received == []  # paused: even the replay waits
    assert client.post("/api/destinations/hook/resume", headers=admin).json()["paused"] is False
    hook.wait_for(1)
    assert_error(
        client.post("/api/destinations/hook/replay", json=one, headers=admin), 404, "not_found"
    )
    listed = client.get("/api/destinations", headers=admin).json()
    assert listed["export_targets"] == []
    assert_error(
        client.post("/api/destinations/hook/explode", headers=admin), 400, "invalid_payload"
    )
