"""Double opt-in: pending until the person confirms through a signed, expiring link in a
confirmation message; resend; expiry; every step in the audit history."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engagehub.errors import SignatureError
from engagehub.messaging import double_opt_in, links
from engagehub.messaging.service import MessagingService
from engagehub.processing import run_until_caught_up
from engagehub.registry import processors
from tests.conftest import assert_error, settle
from tests.messaging.conftest import Sink
from tests.messaging.test_broadcasts import drain
from tests.messaging.test_unsubscribe import _history

CONFIRM = {
    "name": "double-opt-in",
    "channel": "email",
    "kind": "transactional",
    "subject": "Please confirm",
    "text": "Confirm here: {{ data.confirm_url }} (until {{ data.expires_at }})",
}
PROMO = {"name": "promo", "channel": "email", "subject": "Hi", "text": "Deals"}


def request(client: TestClient, admin: dict[str, str], key: str, **extra: object) -> Any:
    item = {"key": key, "type": "EMAIL", "status": "SUBSCRIBED"}
    r = client.put(
        "/api/subscriptions",
        json={"subscriptions": [item], "double_opt_in": True, **extra},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    return r.json()


def link_in(sink: Sink, to: str) -> str:
    text = sink.to(to)[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"https://hub\.test(/confirm/[^\s]+)", text)
    assert found, text
    return found.group(1)


def test_pending_until_confirmed_then_subscribed(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    for tpl in (CONFIRM, PROMO):
        assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    body = request(client, admin, "Ada@Example.com")
    assert body["successes"][0]["status"] == "pending"
    hub = settle(client)
    drain(hub, MessagingService(hub.settings))
    path = link_in(smtp_sink, "ada@example.com")

    # pending is not subscribed: marketing is dropped, naming the state
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "ada@example.com"}, headers=admin
    )
    assert r.json()["error"] == "not_subscribed: email is pending"

    page = client.get(path)  # a scanner's GET changes nothing
    assert page.status_code == 200
    assert "Yes, subscribe me" in page.text
    assert _history(client, admin, "ada@example.com")[0]["status"] == "pending"
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.post(forged).status_code == 401

    done = client.post(path)
    assert done.status_code == 200, done.text
    assert "Subscribed" in done.text
    steps = [
        (h["status"], h["reason"], h["outcome"]) for h in _history(client, admin, "ada@example.com")
    ]
    assert steps == [
        ("subscribed", "double_opt_in", "applied"),
        ("pending", "double_opt_in_requested", "applied"),
    ]
    r = client.post(
        "/api/sends", json={"template": "promo", "to": "ada@example.com"}, headers=admin
    )
    assert r.json()["state"] == "sent", r.text
    assert client.post(path).status_code == 200  # the same link confirms the same way again
    # a resend is refused once subscribed
    again = client.post(
        "/api/subscriptions/confirmations",
        json={"key": "ada@example.com", "type": "EMAIL"},
        headers=admin,
    )
    assert_error(again, 409, "conflict")


def test_resend_and_expiry(client: TestClient, admin: dict[str, str], smtp_sink: Sink) -> None:
    assert client.post("/api/templates", json=CONFIRM, headers=admin).status_code == 201
    request(client, admin, "bo@example.com")
    hub = settle(client)
    service = MessagingService(hub.settings)
    drain(hub, service)
    r = client.post(
        "/api/subscriptions/confirmations",
        json={"key": "bo@example.com", "type": "email"},
        headers=admin,
    )
    assert r.status_code == 202, r.text
    settle(client)
    drain(hub, service)
    assert len(smtp_sink.to("bo@example.com")) == 2
    assert [h["reason"] for h in _history(client, admin, "bo@example.com")][:2] == [
        "double_opt_in_resent",
        "double_opt_in_requested",
    ]
    short = hub.settings.model_copy(update={"double_opt_in_expiry_hours": 1e-9})
    with hub.db.session() as conn:
        assert double_opt_in.expire(conn, short) == 1
        run_until_caught_up(conn, processors(short))
        assert double_opt_in.expire(conn, short) == 0  # nothing pending any more
    latest = _history(client, admin, "bo@example.com")[0]
    assert (latest["status"], latest["reason"]) == ("did_not_subscribe", "double_opt_in_expired")
    bad = client.post(
        "/api/subscriptions/confirmations",
        json={"key": "bo@example.com", "type": "FAX"},
        headers=admin,
    )
    assert_error(bad, 400, "invalid_payload")


def test_tokens_expire_and_cannot_be_forged() -> None:
    key = b"k" * 32
    who = links.Recipient("email", "ada@example.com", "news")
    token = double_opt_in.sign(key, who, 1_000)
    assert double_opt_in.verify(key, token, 1_000 + 3_600_000, 2) == who
    with pytest.raises(SignatureError, match="expired"):
        double_opt_in.verify(key, token, 1_000 + 3 * 3_600_000, 2)
    with pytest.raises(SignatureError, match="signature"):
        double_opt_in.verify(b"x" * 32, token, 1_000, 2)
    with pytest.raises(SignatureError, match="damaged"):
        double_opt_in.verify(key, "nonsense", 1_000, 2)
