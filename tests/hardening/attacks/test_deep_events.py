"""Attacks 6 and 7: events nested too deeply are rejected one by one, the good ones of the batch
are kept, and events stored before the limit existed never break the pages that show them."""

from __future__ import annotations

import base64

import orjson
import pytest
from fastapi.testclient import TestClient

from engagehub.model import IncomingEvent
from engagehub.safejson import MAX_DEPTH
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import assert_error, make_source
from tests.hardening.attacks.harness import ADMIN


def deep(depth: int) -> dict[str, object]:
    """A JSON object nested ``depth`` levels deep."""
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def track(message_id: str, properties: dict[str, object]) -> dict[str, object]:
    """One Segment track call."""
    return {
        "type": "track",
        "event": "Email Opened",
        "userId": "u1",
        "messageId": message_id,
        "properties": properties,
    }


def deep_track(message_id: str, depth: int) -> str:
    """A track call whose properties nest ``depth`` levels (as text: encoders stop near 255)."""
    nested = '{"a": ' * (depth - 1) + '{"leaf": 1}' + "}" * (depth - 1)
    return (
        '{"type": "track", "event": "Email Opened", "userId": "u1", '
        f'"messageId": "{message_id}", "properties": {nested}}}'
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 250, 253, 254, 999])
def test_deep_events_are_rejected_one_by_one(client: TestClient, db: Database, depth: int) -> None:
    _, key = make_source(db, "web", "segment")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    good = [orjson.dumps(track(f"good-{i}", {"n": i})).decode() for i in (1, 2)]
    batch = f'{{"batch": [{good[0]}, {deep_track("deep", depth)}, {good[1]}]}}'
    response = client.post("/v1/batch", content=batch, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    [rejected] = body["rejected"]
    assert rejected["index"] == 1
    assert rejected["error"]["code"] == "invalid_payload"
    assert rejected["error"]["details"]["limit"] == MAX_DEPTH
    single = client.post("/v1/track", content=deep_track("deep-single", depth), headers=auth)
    assert_error(single, 400, "invalid_payload")
    listed = client.get("/api/events", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    assert {e["raw"]["messageId"] for e in listed.json()["events"]} == {"good-1", "good-2"}


def test_events_at_the_limit_are_accepted(client: TestClient, db: Database) -> None:
    _, key = make_source(db, "web", "segment")
    event = track("edge", deep(MAX_DEPTH - 2))  # event object + properties + the nesting
    response = client.post("/v1/track", json={**event, "writeKey": key})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["moengage", "braze-currents"])
def test_other_vendors_keep_the_good_events(client: TestClient, db: Database, kind: str) -> None:
    make_source(db, "v", kind.split("-")[0], secret="s3cret-token")
    headers = {"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"}
    if kind == "moengage":
        good = {"event_name": "MOE_EMAIL_SENT", "event_uuid": "g", "event_time": 1700000000}
        bad = {**good, "event_uuid": "b", "event_attributes": deep(300)}
    else:
        good = {"event_type": "users.messages.email.Send", "id": "g", "time": 1700000000}
        bad = {**good, "id": "b", "properties": deep(300)}
    response = client.post(f"/webhooks/{kind}/v", json={"events": [good, bad]}, headers=headers)
    assert response.status_code in (200, 400), response.text
    rejected = response.json().get("rejected") or response.json()["error"]["details"]["rejected"]
    assert [r["index"] for r in rejected] == [1]
    assert client.get("/api/events", headers=ADMIN).json()["events"][0]["raw"]


def test_deep_events_stored_before_the_limit_still_render(client: TestClient, db: Database) -> None:
    source, _ = make_source(db, "old", "segment")
    raw = '{"messageId": "old", "properties": ' + '{"a": ' * 600 + "1" + "}" * 600 + "}"
    event = IncomingEvent(
        dedup_key="old",
        event_time=1_700_000_000_000,
        raw="{}",
        event="email_opened",
        vendor_event="Email Opened",
        user_id="deep-user",
        message_id="deep-message",
    )
    with db.session() as conn:
        log.append(conn, [log.Batch(source.id, 1_700_000_000_000, [event])])
        # what the log could hold before the limit: raw of any depth, properties of 250 levels
        conn.execute(
            "UPDATE events SET raw = ?, properties = ? WHERE dedup_key = ?",
            (raw, '{"p": ' + '{"a": ' * 250 + "1" + "}" * 250 + "}", "old"),
        )
    for path in ("/api/events", "/api/profiles/deep-user", "/api/messages/deep-message"):
        response = client.get(path, headers=ADMIN)
        assert response.status_code in (200, 404), (path, response.text)
        assert response.status_code == 200 or path != "/api/events"
    listed = client.get("/api/events", headers=ADMIN).json()["events"]
    assert listed[0]["raw"] == raw  # verbatim text: too deep to inflate
