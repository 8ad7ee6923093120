"""What browser libraries need from ``/v1/``: CORS, the settings document, short paths, text/plain.

Each test drives the real app over ASGI the way analytics.js does (preflight, then a
``text/plain`` POST with Basic auth and ``X-Retry-Count``) and reads what was stored.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import assert_error, make_source
from tests.ingest.test_segment_api import basic

SHOP = "http://shop.example:8080"
PREFLIGHT = {
    "Origin": SHOP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
}


def browser_post(client: TestClient, path: str, key: str, body: dict[str, Any]) -> Any:
    """A call as analytics.js makes it: text/plain JSON, Basic auth, retry count, an Origin."""
    headers = {**basic(key), "Content-Type": "text/plain", "Origin": SHOP, "X-Retry-Count": "1"}
    return client.post(path, content=_json(body), headers=headers)


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def stored(db: Database) -> list[Any]:
    with db.session() as conn:
        return list(log.read_range(conn, 0, 10**9))


def test_preflight_is_answered_for_every_v1_path(client: TestClient) -> None:
    for path in ("/v1/t", "/v1/batch", "/v1/b", "/v1/projects/abc/settings", "/v1/nothing"):
        r = client.options(path, headers=PREFLIGHT)
        assert r.status_code == 204, (path, r.text)
        assert r.headers["access-control-allow-origin"] == SHOP
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-retry-count"} <= allowed
        assert "POST" in r.headers["access-control-allow-methods"]
        assert int(r.headers["access-control-max-age"]) >= 600
        assert r.headers["vary"] == "Origin"
        assert r.content == b""


def test_private_network_preflight_is_allowed(client: TestClient) -> None:
    headers = {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"}
    r = client.options("/v1/t", headers=headers)
    assert r.headers["access-control-allow-private-network"] == "true"


def test_cors_header_on_success_and_on_every_error(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    ok = browser_post(client, "/v1/t", key, {"event": "Email Opened", "userId": "u1"})
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "Retry-After" in ok.headers["access-control-expose-headers"]
    unknown = browser_post(client, "/v1/t", "not-a-key", {"event": "x", "userId": "u"})
    assert_error(unknown, 401, "unauthorized")
    assert unknown.headers["access-control-allow-origin"] == SHOP
    bad = browser_post(client, "/v1/t", key, {"userId": "u"})
    assert_error(bad, 400, "invalid_payload")
    assert bad.headers["access-control-allow-origin"] == SHOP
    missing = client.get("/v1/nothing", headers={"Origin": SHOP})
    assert_error(missing, 404, "not_found")
    assert missing.headers["access-control-allow-origin"] == SHOP
    big = client.post("/v1/t", content=b"x" * (600 * 1024), headers={"Origin": SHOP})
    assert_error(big, 413, "payload_too_large")
    assert big.headers["access-control-allow-origin"] == SHOP
    # Without an Origin (server-side libraries) the header is the wildcard; nothing else needs it.
    plain = client.post("/v1/track", json={"event": "e", "userId": "u"}, headers=basic(key))
    assert plain.headers["access-control-allow-origin"] == "*"
    # Only /v1/ is opened to other origins: the management API stays same-origin.
    api = client.get("/api/sources", headers={"Origin": SHOP})
    assert "access-control-allow-origin" not in api.headers
    assert client.options("/api/sources", headers=PREFLIGHT).status_code == 405


def test_rate_limited_reply_carries_cors_and_exposes_retry_after(database_url: str) -> None:
    settings = Settings(database_url=database_url, rate_limit_per_second=1, rate_limit_burst=1)
    with TestClient(create_app(settings)) as client:
        codes = [browser_post(client, "/v1/t", "k" * 10, {}) for _ in range(3)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert limited[0].headers["access-control-allow-origin"] == SHOP
    assert limited[0].headers["retry-after"]


def test_a_crash_still_answers_with_cors(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engagehub.vendors import segment

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    _, key = make_source(db)
    monkeypatch.setattr(segment, "parse_envelope", explode)
    crashing = TestClient(client.app, raise_server_exceptions=False)
    r = browser_post(crashing, "/v1/t", key, {"event": "e", "userId": "u"})
    assert_error(r, 500, "internal")
    assert r.headers["access-control-allow-origin"] == SHOP


def test_every_short_path_stores_its_call_once(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    calls = {
        "t": {"type": "track", "event": "Email Opened", "userId": "u"},
        "i": {"type": "identify", "userId": "u", "traits": {"email": "u@example.com"}},
        "p": {"type": "page", "anonymousId": "a", "name": "Home"},
        "s": {"type": "screen", "anonymousId": "a", "name": "Cart"},
        "g": {"type": "group", "userId": "u", "groupId": "g1"},
        "a": {"type": "alias", "userId": "u", "previousId": "a"},
    }
    for path, body in calls.items():
        for _attempt in range(2):  # a retry of the same messageId is stored once
            r = browser_post(client, f"/v1/{path}", key, {**body, "messageId": "m-" + path})
            assert r.status_code == 200, (path, r.text)
    batch = [{**b, "messageId": "b-" + p} for p, b in calls.items()]
    r = browser_post(client, "/v1/b", key, {"batch": batch, "writeKey": key})
    assert r.status_code == 200, r.text
    events = stored(db)
    assert [(e.dedup_key, e.type) for e in events] == [
        *(("m-" + p, b["type"]) for p, b in calls.items()),
        *(("b-" + p, b["type"]) for p, b in calls.items()),
    ]


def test_text_plain_and_no_content_type_are_both_read_as_json(
    client: TestClient, db: Database
) -> None:
    _, key = make_source(db)
    body = _json({"event": "Email Opened", "userId": "u", "messageId": "tp"})
    for ctype in ("text/plain;charset=UTF-8", None, "application/x-www-form-urlencoded"):
        headers = {**basic(key), **({"Content-Type": ctype} if ctype else {})}
        r = client.post("/v1/track", content=body, headers=headers)
        assert r.status_code == 200, (ctype, r.text)
    assert [e.dedup_key for e in stored(db)] == ["tp"]


def test_library_metrics_are_accepted_and_discarded(client: TestClient, db: Database) -> None:
    r = client.post("/v1/m", content=b'{"series": []}', headers={"Origin": SHOP})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    assert stored(db) == []


def test_settings_point_analytics_js_back_at_this_server(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    r = client.get(f"/v1/projects/{key}/settings", headers={"Origin": SHOP})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    body = r.json()
    segment_io = body["integrations"]["Segment.io"]
    assert segment_io["apiKey"] == key
    assert segment_io["apiHost"] == "testserver/v1"
    assert segment_io["protocol"] == "http"
    assert body["metrics"]["sampleRate"] == 0
    assert body["remotePlugins"] == []


def test_settings_use_the_public_base_url(database_url: str, db: Database) -> None:
    _, key = make_source(db)
    settings = Settings(database_url=database_url, public_base_url="https://hub.example.com/eh/")
    with TestClient(create_app(settings)) as client:
        body = client.get(f"/v1/projects/{key}/settings").json()
    assert body["integrations"]["Segment.io"]["apiHost"] == "hub.example.com/eh/v1"
    assert body["integrations"]["Segment.io"]["protocol"] == "https"


def test_settings_of_an_unknown_key_is_404_with_cors(client: TestClient, db: Database) -> None:
    _, twilio_key = make_source(db, "sms", "twilio")
    r = client.get("/v1/projects/nope-nope/settings", headers={"Origin": SHOP})
    details = assert_error(r, 404, "not_found")
    assert details["write_key_hint"] == "nope…"
    assert r.headers["access-control-allow-origin"] == SHOP
    other_kind = client.get(f"/v1/projects/{twilio_key}/settings", headers={"Origin": SHOP})
    assert_error(other_kind, 403, "forbidden")


def test_a_source_can_list_its_allowed_origins(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    r = client.post(
        "/api/sources",
        json={"name": "shop", "kind": "segment", "config": {"allowed_origins": [SHOP + "/"]}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    key = r.json()["write_key"]
    ok = browser_post(client, "/v1/t", key, {"event": "Email Opened", "userId": "u"})
    assert ok.status_code == 200, ok.text
    headers = {**basic(key), "Origin": "https://evil.example"}
    refused = client.post("/v1/t", content=b'{"event": "e", "userId": "u"}', headers=headers)
    details = assert_error(refused, 403, "forbidden")
    assert details["origin"] == "https://evil.example"
    assert details["allowed_origins"] == [SHOP]
    settings = client.get(
        f"/v1/projects/{key}/settings", headers={"Origin": "https://evil.example"}
    )
    assert_error(settings, 403, "forbidden")
    # A server-side library sends no Origin: the list does not concern it.
    server = client.post("/v1/track", json={"event": "e", "userId": "u"}, headers=basic(key))
    assert server.status_code == 200
    assert len(stored(db)) == 2


def test_allowed_origins_must_be_origins(client: TestClient, admin: dict[str, str]) -> None:
    for bad in ("https://shop.example", ["shop.example"], ["https://shop.example/path"], [3]):
        r = client.post(
            "/api/sources",
            json={"name": "shop", "kind": "segment", "config": {"allowed_origins": bad}},
            headers=admin,
        )
        details = assert_error(r, 400, "invalid_payload")
        assert details["field"] == "config.allowed_origins"
        assert details["value"] == bad


def test_identify_traits_come_from_context_when_absent(client: TestClient, db: Database) -> None:
    _, key = make_source(db)
    rudder_like = {
        "type": "identify",
        "userId": "u7",
        "messageId": "r1",
        "context": {"traits": {"email": "u7@example.com", "plan": "pro"}},
    }
    both = {**rudder_like, "messageId": "r2", "traits": {"plan": "free"}}
    r = client.post("/v1/batch", json={"batch": [rudder_like, both]}, headers=basic(key))
    assert r.status_code == 200, r.text
    first, second = stored(db)
    assert first.properties == {"email": "u7@example.com", "plan": "pro"}
    assert first.contact == "u7@example.com"
    assert second.properties == {"plan": "free"}
