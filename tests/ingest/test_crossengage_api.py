"""``POST /crossengage/events`` through the real ASGI app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import assert_error, make_source

BODY = {
    "id": "ABC12345",
    "events": [
        {
            "event": "Message Sent",
            "timestamp": "2022-01-11T00:00:00Z",
            "properties": {"channel": "Email", "type": "Newsletter"},
        },
        {
            "event": "Message Delivered",
            "timestamp": "2022-01-11T00:00:00Z",
            "properties": {"channel": "Email", "type": "Newsletter"},
        },
    ],
}


def headers(key: str, version: str = "1") -> dict[str, str]:
    return {"X-XNG-AuthToken": key, "X-XNG-ApiVersion": version}


def test_events_are_accepted_with_202_once(client: TestClient, db: Database) -> None:
    _, key = make_source(db, "ce", "crossengage")
    for _ in range(2):
        r = client.post("/crossengage/events", json=BODY, headers=headers(key))
        assert r.status_code == 202, r.text
    with db.session() as conn:
        events = log.read_range(conn, 0, 100)
    assert [(e.event, e.user_id, e.channel) for e in events] == [
        ("Email Sent", "ABC12345", "email"),
        ("Email Delivered", "ABC12345", "email"),
    ]


def test_mandatory_fields_and_headers(client: TestClient, db: Database) -> None:
    _, key = make_source(db, "ce", "crossengage")
    assert_error(client.post("/crossengage/events", json=BODY), 401, "unauthorized")
    details = assert_error(
        client.post("/crossengage/events", json=BODY, headers=headers(key, "2")),
        400,
        "invalid_payload",
    )
    assert details == {"header": "X-XNG-ApiVersion", "value": "2"}
    details = assert_error(
        client.post("/crossengage/events", json={"events": BODY["events"]}, headers=headers(key)),
        400,
        "invalid_payload",
    )
    assert details["field"] == "id"
    missing_ts = {"id": "u", "events": [{"event": "Message Sent"}]}
    assert_error(
        client.post("/crossengage/events", json=missing_ts, headers=headers(key)),
        400,
        "invalid_payload",
    )
    partial = {"id": "u", "events": [*BODY["events"], {"event": "Message Sent"}]}
    r = client.post("/crossengage/events", json=partial, headers=headers(key))
    assert r.status_code == 202
    assert r.json()["accepted"] == 2
    assert r.json()["rejected"][0]["index"] == 2
