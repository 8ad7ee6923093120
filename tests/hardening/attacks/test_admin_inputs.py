"""Attack 10 (admin input): values that used to answer 500 get the one error shape; the unmapped
list pages; a Twilio source without a public base URL is warned about at start-up."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.settings import Settings
from engagehub.storage import Database
from tests.conftest import ADMIN_SECRET, assert_error, make_source
from tests.hardening.attacks.harness import ADMIN

DIGITS = "9" * 20


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/events?cursor=" + "9" * 400, None),
        ("DELETE", f"/api/goals/{DIGITS}", None),
        ("GET", "/api/campaigns/c1/stats?from=0001-01-01T00:00:00%2B14:00", None),
        ("GET", "/api/campaigns/c1/stats?to=9999-12-31T23:59:59-14:00", None),
        ("POST", "/api/goals", {"campaign": "c1", "event": "x", "within": DIGITS + "h"}),
        (
            "POST",
            "/api/goals",
            {"campaign": "c1", "event": "x", "where": "not " * 3000 + "properties.a == 1"},
        ),
        (
            "POST",
            "/api/goals",
            {
                "campaign": "c1",
                "event": "x",
                "where": "(" * 3000 + "properties.a == 1" + ")" * 3000,
            },
        ),
        ("GET", f"/live/events?after={DIGITS}", None),
        ("GET", f"/api/events/unmapped?cursor={DIGITS}", None),
    ],
)
def test_admin_inputs_are_client_errors(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path, json=body, headers=ADMIN)
    assert_error(response, 400, "invalid_payload")


def test_a_huge_number_in_source_config_is_kept_as_text(client: TestClient) -> None:
    body = b'{"name": "big", "kind": "segment", "config": {"n": %d}}' % 2**70
    response = client.post(
        "/api/sources", content=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    listed = client.get("/api/sources", headers=ADMIN)
    assert listed.status_code == 200, listed.text


def test_unmapped_names_are_paginated(client: TestClient, db: Database) -> None:
    source, _ = make_source(db, "web", "segment")
    with db.session() as conn:
        conn.executemany(
            "INSERT INTO unmapped_events (source_id, vendor_event, count, first_seen, last_seen) "
            "VALUES (?, ?, ?, 0, 0)",
            [(source.id, f"Custom {i:05d}", i % 7 + 1) for i in range(2500)],
        )
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/events/unmapped", params=params, headers=ADMIN).json()
        assert len(page["unmapped"]) <= 1000
        seen += [u["vendor_event"] for u in page["unmapped"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 2500
    default = client.get("/api/events/unmapped", headers=ADMIN).json()
    assert len(default["unmapped"]) == 500
    assert default["next_cursor"] == "500"


def test_twilio_without_public_base_url_warns_at_start(
    database_url: str, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    make_source(db, "tw", "twilio", secret="twilio-auth-token-0123456789abcdef")
    settings = Settings(database_url=database_url, admin_token=ADMIN_SECRET)
    with caplog.at_level(logging.WARNING, logger="engagehub.hub"), TestClient(create_app(settings)):
        pass
    assert "ENGAGEHUB_PUBLIC_BASE_URL is unset" in caplog.text
    caplog.clear()
    quiet = Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        public_base_url="https://hub.example.com",
    )
    with caplog.at_level(logging.WARNING, logger="engagehub.hub"), TestClient(create_app(quiet)):
        pass
    assert "ENGAGEHUB_PUBLIC_BASE_URL" not in caplog.text
