"""The Segment-compatible HTTP API through the real ASGI app."""

from __future__ import annotations

import gzip

import orjson
from fastapi.testclient import TestClient

from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import assert_error, basic, make_source, track


def stored(db: Database) -> list[str]:
    with db.session() as conn:
        return [e.dedup_key for e in log.read_range(conn, 0, 10**9)]


def test_batch_with_basic_auth_is_committed_before_200(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    r = client.post("/v1/batch", json={"batch": [track("m1"), track("m2")]}, headers=basic(key))
    assert r.status_code == 200
    assert r.json() == {"success": True}
    assert stored(db) == ["m1", "m2"]


def test_write_key_in_body_and_single_calls(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    calls = {
        "track": {"event": "Email Delivered", "userId": "u"},
        "identify": {"userId": "u", "traits": {"email": "x@y.com"}},
        "page": {"anonymousId": "a", "name": "Home"},
        "screen": {"anonymousId": "a", "name": "Cart"},
        "group": {"userId": "u", "groupId": "g1"},
        "alias": {"userId": "u", "previousId": "a"},
    }
    for call, body in calls.items():
        r = client.post(f"/v1/{call}", json={**body, "writeKey": key, "messageId": call})
        assert r.status_code == 200, (call, r.text)
    with db.session() as conn:
        types = [e.type for e in log.read_range(conn, 0, 100)]
    assert types == list(calls)


def test_retried_batch_does_not_double_count(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    body = {"batch": [track("m1"), track("m2")]}
    for _ in range(3):
        assert client.post("/v1/batch", json=body, headers=basic(key)).status_code == 200
    assert stored(db) == ["m1", "m2"]


def test_partly_invalid_batch_keeps_the_good_events(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    body = {"batch": [track("ok"), {"type": "track", "userId": "u", "messageId": "bad"}]}
    r = client.post("/v1/batch", json=body, headers=basic(key))
    assert r.status_code == 200
    reply = r.json()
    assert reply["success"] is True
    assert reply["accepted"] == 1
    (rejected,) = reply["rejected"]
    assert rejected["index"] == 1
    assert rejected["ref"] == "bad"
    assert rejected["error"]["details"]["field"] == "event"
    assert stored(db) == ["ok"]


def test_all_invalid_is_400_naming_each(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    body = {"batch": [{"type": "track", "userId": "u"}, {"type": "nope", "userId": "u"}]}
    details = assert_error(
        client.post("/v1/batch", json=body, headers=basic(key)), 400, "validation_failed"
    )
    assert [r["index"] for r in details["rejected"]] == [0, 1]
    assert stored(db) == []


def test_auth_errors(client: TestClient, db: Database) -> None:
    make_source(db)
    assert_error(client.post("/v1/batch", json={"batch": [track("m")]}), 401, "unauthorized")
    details = assert_error(
        client.post("/v1/batch", json={"batch": [track("m")]}, headers=basic("wrong-key")),
        401,
        "unauthorized",
    )
    assert details["write_key_hint"] == "wron…"
    _, ce_key = make_source(db, "ce", "crossengage")
    assert_error(
        client.post("/v1/batch", json={"batch": [track("m")]}, headers=basic(ce_key)),
        403,
        "forbidden",
    )
    assert stored(db) == []


def test_size_limits(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    huge = {"batch": [track(f"m{i}", properties={"p": "x" * 20_000}) for i in range(30)]}
    assert_error(client.post("/v1/batch", json=huge, headers=basic(key)), 413, "payload_too_large")
    big_event = track("big", properties={"p": "x" * 40_000})
    details = assert_error(
        client.post("/v1/track", json=big_event, headers=basic(key)), 413, "payload_too_large"
    )
    assert details["limit"] == 32 * 1024
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    assert_error(
        client.post("/v1/batch", content=bomb, headers={**basic(key), "Content-Encoding": "gzip"}),
        413,
        "payload_too_large",
    )
    assert stored(db) == []


def test_gzip_bodies_are_read(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    body = gzip.compress(orjson.dumps({"batch": [track("gz")]}))
    r = client.post(
        "/v1/batch",
        content=body,
        headers={**basic(key), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200
    assert stored(db) == ["gz"]
    assert_error(
        client.post("/v1/batch", content=b"x", headers={**basic(key), "Content-Encoding": "br"}),
        415,
        "unsupported_media_type",
    )


def test_malformed_json_and_wrong_types(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    broken = assert_error(
        client.post("/v1/batch", content=b'{"batch": [{"type": oops}]}', headers=basic(key)),
        400,
        "invalid_payload",
    )
    assert broken["position"] == 20  # where it broke, and what is there
    assert broken["near"] == '{"batch": [{"type": oops}]}'
    cut = assert_error(
        client.post("/v1/track", content=b'{"event": "X", "userId": 5', headers=basic(key)),
        400,
        "invalid_payload",
    )
    assert cut["position"] == 26  # cut short: the end of the body
    details = assert_error(
        client.post("/v1/batch", json={"batch": {"a": 1}}, headers=basic(key)),
        400,
        "invalid_payload",
    )
    assert details["path"] == "$.batch"


def test_unknown_routes_and_methods_use_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/batch"), 405, "method_not_allowed")
