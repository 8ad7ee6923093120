"""Request size limits, per-key rate limits and refused NUL characters, on every route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.security.ratelimit import RateLimiter
from engagehub.settings import Settings
from tests.conftest import ADMIN_SECRET, ADMIN_TOKEN, assert_error
from tests.hardening.routes import concrete, routes

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def small_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app with tiny limits so tests can pass them cheaply."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/limits.db",
        admin_token=ADMIN_SECRET,
        max_api_body_bytes=1000,
        max_batch_bytes=2000,
        max_webhook_bytes=3000,
        max_upload_bytes=4000,
        rate_limit_per_second=2,
        rate_limit_burst=3,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_every_route_that_takes_a_body_refuses_one_over_its_limit(client: TestClient) -> None:
    huge = b"x" * (9 * 1024 * 1024)  # over every default limit, uploads aside
    for method, path in routes(client.app):
        if method not in {"POST", "PUT", "PATCH", "DELETE"}:
            continue
        headers = {**ADMIN, "Content-Type": "application/json"}
        response = client.request(method, concrete(path), content=huge, headers=headers)
        details = assert_error(response, 413, "payload_too_large")
        assert details["limit"] < len(huge), (path, details)


def test_a_streamed_body_without_length_is_cut_at_the_limit(small_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"x" * 100

    response = small_client.post(
        "/api/sources", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    # the server is fine afterwards
    assert small_client.get("/api/sources", headers=ADMIN).status_code == 200


def test_rate_limit_answers_429_with_retry_after_per_key(small_client: TestClient) -> None:
    statuses = [small_client.get("/api/sources", headers=ADMIN).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = small_client.get("/api/sources", headers=ADMIN)
    details = assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert details["retry_after"] == int(limited.headers["Retry-After"])
    # another credential has its own bucket
    other = small_client.get("/api/sources", headers={"Authorization": "Bearer someone-else"})
    assert_error(other, 401, "unauthorized")


def test_token_bucket_refills_at_its_rate() -> None:
    limiter = RateLimiter(rate=10, burst=2)
    assert [limiter.check("k", now=0.0) for _ in range(3)] == [0, 0, 1]
    assert limiter.check("k", now=0.1) == 0  # one token back after 1/rate seconds
    assert limiter.check("other", now=0.1) == 0
    assert RateLimiter(rate=0, burst=1).check("k") == 0  # 0 turns limiting off


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=100)
    for i in range(1000):
        limiter.check(f"key-{i}", now=0.0)
    assert len(limiter._buckets) == 100


@pytest.mark.parametrize(
    "url",
    ["/api/subscriptions?key=a%00b", "/api/events?user_id=%00", "/api/profiles/a%00b"],
)
def test_nul_characters_in_paths_and_queries_are_refused(client: TestClient, url: str) -> None:
    assert_error(client.get(url, headers=ADMIN), 400, "invalid_payload")


def test_nul_characters_in_event_fields_are_rejected_per_event(client: TestClient) -> None:
    key = client.post("/api/sources", json={"name": "w", "kind": "segment"}, headers=ADMIN).json()[
        "write_key"
    ]
    batch = [
        {"type": "track", "event": "Email Opened", "userId": "ok", "messageId": "m1"},
        {"type": "track", "event": "Email Opened", "userId": "bad\u0000id", "messageId": "m2"},
        {
            "type": "track",
            "event": "Email Opened",
            "userId": "u",
            "messageId": "m3",
            "timestamp": "0001-01-01T00:00:00Z",
            "sentAt": "9999-01-01T00:00:00Z",
        },
    ]
    response = client.post("/v1/batch", json={"batch": batch, "writeKey": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["error"]["details"]["field"]) for r in body["rejected"]] == [
        (1, "user_id"),
        (2, "event_time"),
    ]


def test_big_integers_in_properties_are_stored_not_crashed_on(client: TestClient) -> None:
    key = client.post("/api/sources", json={"name": "w", "kind": "segment"}, headers=ADMIN).json()[
        "write_key"
    ]
    body = (
        b'{"type": "track", "event": "X", "userId": "u", "messageId": "big", "writeKey": "'
        + key.encode()
        + b'", "properties": {"n": 123456789012345678901234567890}}'
    )
    response = client.post("/v1/track", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    events = client.get("/api/events", headers=ADMIN).json()
    found = events.get("events", events)
    assert "123456789012345678901234567890" in str(found)
