"""Attack 4: bogus credentials get no fresh buckets, guessing is throttled, and a flood from one
address does not starve a vendor posting from another."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from engagehub.app import create_app
from engagehub.demo.signing import SendGridSigner
from engagehub.settings import Settings
from tests.conftest import ADMIN_SECRET
from tests.hardening.attacks.harness import ADMIN, attacked_server, client_from

LIMITS = {
    "rate_limit_per_second": "20",
    "rate_limit_burst": "20",
    "auth_failure_rate_per_second": "1",
    "auth_failure_burst": "10",
}


def test_rotating_bogus_tokens_share_the_callers_bucket(tmp_path: Path) -> None:
    with attacked_server(tmp_path, **LIMITS) as server, client_from("127.0.0.2", server) as http:
        statuses = [
            http.get(
                "/api/sources", headers={"Authorization": f"Bearer {secrets.token_hex(16)}"}
            ).status_code
            for _ in range(150)
        ]
        limited = statuses.count(429)
        print(f"\nrotating bogus tokens: {limited} of 150 limited")
        assert statuses[:10] == [401] * 10
        assert limited >= 130, statuses
        # the real token still works from the same address: it has its own bucket
        assert http.get("/api/sources", headers=ADMIN).status_code == 200


def test_guessing_the_admin_token_is_throttled(tmp_path: Path) -> None:
    with attacked_server(tmp_path, **LIMITS) as server, client_from("127.0.0.3", server) as http:
        guesses = [
            http.get("/api/events", headers={"Authorization": f"Bearer guess-{i:012d}"})
            for i in range(40)
        ]
        statuses = [r.status_code for r in guesses]
        assert statuses[:10] == [401] * 10
        assert set(statuses[10:]) == {429}, statuses
        assert int(guesses[-1].headers["Retry-After"]) >= 1
        assert guesses[-1].json()["error"]["code"] == "rate_limited"
        # another address is not affected by this one's failures
        with client_from("127.0.0.4", server) as other:
            assert other.get("/api/events", headers=ADMIN).status_code == 200


def test_a_flood_does_not_starve_the_signed_vendor(tmp_path: Path) -> None:
    signer = SendGridSigner()
    with attacked_server(tmp_path, **LIMITS) as server:
        with client_from("127.0.0.1", server) as vendor:
            created = vendor.post(
                "/api/sources",
                json={"name": "sg", "kind": "sendgrid", "secret": signer.public},
                headers=ADMIN,
            )
            assert created.status_code == 201, created.text
        body = b'[{"email": "a@example.com", "event": "open", "sg_event_id": "e0", "timestamp": 1}]'
        with client_from("127.0.0.5", server) as flood:
            flooded = [flood.post("/webhooks/sendgrid/sg", content=body) for _ in range(100)]
        assert {r.status_code for r in flooded} <= {401, 429}
        assert sum(r.status_code == 429 for r in flooded) >= 80
        with client_from("127.0.0.1", server) as vendor:
            signed = []
            for i in range(10):
                event = body.replace(b"e0", f"e{i + 1}".encode())
                signed.append(
                    vendor.post(
                        "/webhooks/sendgrid/sg", content=event, headers=signer.headers(event)
                    ).status_code
                )
        print(f"\nsendgrid flood: vendor got {signed}")
        assert signed == [200] * 10


@pytest.mark.parametrize("token", ["x", "short-token", "a" * 15])
def test_short_admin_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(admin_token=token)  # type: ignore[arg-type]
    assert Settings(admin_token="").admin_token is not None  # empty: unset, one is generated


def test_dashboard_login_guessing_is_throttled(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/l.db",
        admin_token=ADMIN_SECRET,
        auth_failure_burst=5,
        auth_failure_rate_per_second=0.01,
    )
    with TestClient(create_app(settings)) as client:
        page = client.get("/login")
        statuses = []
        for i in range(10):
            if 'name="csrf" value="' in page.text:  # each answer carries a fresh form token
                csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            page = client.post("/login", data={"token": f"guess-{i}", "csrf": csrf})
            statuses.append(page.status_code)
    assert statuses == [200] * 5 + [429] * 5, statuses  # the login page, then throttled
