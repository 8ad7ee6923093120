"""Secrets stay secret: never in logs or error bodies; replay windows hold at their edges."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.conftest import ADMIN_TOKEN, app_hub, assert_error, make_source
from tests.vendors.signing import SendGridSigner

BEARER = "braze-bearer-secret-0123456789"


def test_secrets_never_reach_logs_or_error_bodies(
    client: TestClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, write_key = make_source(db, "web", "segment")
    make_source(db, "bz", "braze", secret=BEARER)
    wrong_key = "wk_" + "z" * 30
    bodies = []
    requests = [
        ("GET", "/api/sources", {"Authorization": f"Bearer {ADMIN_TOKEN}"}, None),
        ("GET", "/api/sources", {"Authorization": f"Bearer {ADMIN_TOKEN}-wrong"}, None),
        (
            "POST",
            "/v1/track",
            {},
            {"type": "track", "event": "X", "userId": "u", "writeKey": write_key},
        ),
        (
            "POST",
            "/v1/track",
            {},
            {"type": "track", "event": "X", "userId": "u", "writeKey": wrong_key},
        ),
        ("POST", "/v1/track", {}, {"type": "bogus", "userId": "u", "writeKey": write_key}),
        (
            "POST",
            "/webhooks/braze-currents/bz",
            {"Authorization": f"Bearer {BEARER}"},
            {"events": [{"bad": True}]},
        ),
        ("POST", "/webhooks/braze-currents/bz", {"Authorization": f"Bearer {BEARER}x"}, {}),
    ]
    for method, path, headers, body in requests:
        response = client.request(method, path, headers=headers, json=body)
        bodies.append(response.text)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (ADMIN_TOKEN, write_key, wrong_key, BEARER):
        assert secret not in logged, f"{secret[:6]}… was logged"
        assert all(secret not in b for b in bodies[1:]), f"{secret[:6]}… echoed in an error"


def test_sendgrid_replay_window_edges(client: TestClient, db: Database) -> None:
    signer = SendGridSigner()
    make_source(db, "sg", "sendgrid", secret=signer.public)
    tolerance = app_hub(client).settings.signature_tolerance_seconds
    now = int(time.time())

    def post(ts: int, event_id: str) -> httpx.Response:
        body = (
            b'[{"email": "a@b.c", "timestamp": 1772445600, "event": "open", "sg_event_id": "'
            + event_id.encode()
            + b'"}]'
        )
        return client.post("/webhooks/sendgrid/sg", content=body, headers=signer.headers(body, ts))

    assert post(now - tolerance + 5, "inside-past").status_code == 200
    assert post(now + tolerance - 5, "inside-future").status_code == 200
    for ts in (now - tolerance - 5, now + tolerance + 5, 0):
        details = assert_error(post(ts, f"outside-{ts}"), 401, "invalid_signature")
        assert details["reason"] == "stale"
