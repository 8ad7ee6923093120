"""Unsubscribes made by link scanners: held for confirmation (default), only recorded, or
applied; a person's confirmation and a person's click always apply."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.settings import Settings
from engagehub.storage import events as log
from tests.conftest import app_hub, make_source
from tests.messaging.conftest import Sink, subscribe
from tests.messaging.test_unsubscribe import NEWS, _history, _send
from tests.vendors.signing import SendGridSigner

SCANNER = {"User-Agent": "Barracuda Sentinel (EE)"}
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def policy_client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A client with the test's machine-unsubscribe policy (``indirect`` parameter)."""
    changed = settings.model_copy(update={"consent_machine_unsubscribe_policy": request.param})
    with TestClient(create_app(changed)) as client:
        yield client


def _link(client: TestClient, admin: dict[str, str], smtp_sink: Sink, to: str) -> str:
    assert _send(client, admin, to)["state"] == "sent"
    msg = smtp_sink.to(to)[-1]
    return str(msg["List-Unsubscribe"]).strip("<>").removeprefix("https://hub.test")


def _group_status(client: TestClient, admin: dict[str, str], key: str) -> str | None:
    r = client.get("/api/subscriptions", params={"key": key}, headers=admin)
    for s in r.json()["subscriptions"]:
        if s["group"] == "newsletter":
            return str(s["status"])
    return None


@pytest.mark.parametrize("policy_client", ["confirm"], indirect=True)
def test_scanner_post_is_held_until_the_person_confirms(
    policy_client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    client = policy_client
    assert client.post("/api/templates", json=NEWS, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    path = _link(client, admin, smtp_sink, "ada@example.com")

    r = client.post(path, data=ONE_CLICK, headers=SCANNER)
    assert r.status_code == 202
    assert "Confirm unsubscribe" in r.text
    [held, *_] = _history(client, admin, "ada@example.com")
    assert (held["status"], held["outcome"]) == ("unsubscribed", "unconfirmed")
    assert _group_status(client, admin, "ada@example.com") is None  # nothing changed
    assert _send(client, admin, "ada@example.com")["state"] == "sent"

    confirm = re.search(r"name='confirm' value='([^']+)'", r.text)
    assert confirm is not None
    bad = client.post(path, data={**ONE_CLICK, "confirm": "1.forged"}, headers=SCANNER)
    assert bad.status_code == 202  # a forged confirmation is just another scanner hit
    ok = client.post(path, data={**ONE_CLICK, "confirm": confirm.group(1)}, headers=SCANNER)
    assert ok.status_code == 200, ok.text
    assert _group_status(client, admin, "ada@example.com") == "unsubscribed"


@pytest.mark.parametrize("policy_client", ["record"], indirect=True)
def test_record_only_keeps_the_attempt_in_the_history(
    policy_client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    client = policy_client
    assert client.post("/api/templates", json=NEWS, headers=admin).status_code == 201
    subscribe(client, admin, "bo@example.com")
    path = _link(client, admin, smtp_sink, "bo@example.com")
    r = client.post(path, data=ONE_CLICK, headers=SCANNER)
    assert r.status_code == 202
    assert "confirm" not in r.text
    assert _history(client, admin, "bo@example.com")[0]["outcome"] == "machine_recorded"
    # a person (no scanner agent) still unsubscribes in one click
    assert client.post(path, data=ONE_CLICK).status_code == 200
    assert _group_status(client, admin, "bo@example.com") == "unsubscribed"


@pytest.mark.parametrize("policy_client", ["apply"], indirect=True)
def test_apply_policy_applies_scanner_posts(
    policy_client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    client = policy_client
    assert client.post("/api/templates", json=NEWS, headers=admin).status_code == 201
    subscribe(client, admin, "cy@example.com")
    path = _link(client, admin, smtp_sink, "cy@example.com")
    assert client.post(path, data=ONE_CLICK, headers=SCANNER).status_code == 200
    assert _group_status(client, admin, "cy@example.com") == "unsubscribed"


def test_vendor_unsubscribe_from_a_bot_click_is_held_by_default(
    client: TestClient, admin: dict[str, str]
) -> None:
    hub = app_hub(client)
    signer = SendGridSigner()
    make_source(hub.db, "sg", "sendgrid", secret=signer.public)
    for who in ("di", "ed"):
        subscribe(client, admin, f"{who}@example.com")
    now = int(time.time()) + 5  # after the subscriptions above
    items: list[dict[str, Any]] = [
        {
            "email": "di@example.com",
            "event": "unsubscribe",
            "timestamp": now,
            "sg_event_id": "u1",
            "useragent": "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
        },
        {
            "email": "ed@example.com",
            "event": "unsubscribe",
            "timestamp": now,
            "sg_event_id": "u2",
            "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        },
    ]
    raw = orjson.dumps(items)
    assert (
        client.post("/webhooks/sendgrid/sg", content=raw, headers=signer.headers(raw)).status_code
        == 200
    )
    with hub.db.reader() as conn:
        head = log.head(conn)
    client.portal.call(hub.caught_up, head)  # type: ignore[union-attr]
    held = _history(client, admin, "di@example.com")[0]
    assert (held["reason"], held["outcome"]) == ("vendor_unsubscribe", "unconfirmed")
    status = client.get("/api/subscriptions", params={"key": "di@example.com"}, headers=admin)
    assert status.json()["subscriptions"][0]["status"] == "subscribed"
    status = client.get("/api/subscriptions", params={"key": "ed@example.com"}, headers=admin)
    assert status.json()["subscriptions"][0]["status"] == "unsubscribed"
