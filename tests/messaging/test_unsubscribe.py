"""Signed unsubscribe links, RFC 8058 one-click, and the preference page (CSRF protected)."""

from __future__ import annotations

import base64
import re

import pytest
from fastapi.testclient import TestClient

from engagehub.errors import SignatureError
from engagehub.messaging import links
from tests.messaging.conftest import Sink, subscribe

NEWS = {
    "name": "news",
    "channel": "email",
    "subject": "News",
    "html": "<p>Hi</p>",
    "subscription_group": "newsletter",
}


def test_tokens_cannot_be_forged_or_redirected() -> None:
    key = b"k" * 32
    ada = links.Recipient("email", "ada@example.com", "newsletter")
    token = links.sign(key, ada)
    assert links.verify(key, token) == ada
    payload, mac = token.split(".")
    other = base64.urlsafe_b64encode(b"email\0eve@example.com\0newsletter").rstrip(b"=").decode()
    for bad in (f"{other}.{mac}", f"{payload}.{mac[:-2]}AA", "garbage", links.sign(b"x" * 32, ada)):
        with pytest.raises(SignatureError):
            links.verify(key, bad)
    csrf = links.csrf_token(key, token, 1000)
    links.check_csrf(key, token, csrf, 2000)
    with pytest.raises(SignatureError):
        links.check_csrf(key, links.sign(key, links.Recipient("email", "x@y.z")), csrf, 2000)
    with pytest.raises(SignatureError):
        links.check_csrf(key, token, csrf, 1000 + links.CSRF_MAX_AGE_MS + 1)


def _send(client: TestClient, admin: dict[str, str], to: str) -> dict[str, object]:
    r = client.post("/api/sends", json={"template": "news", "to": to}, headers=admin)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _history(client: TestClient, admin: dict[str, str], contact: str) -> list[dict[str, object]]:
    r = client.get("/api/subscriptions/history", params={"contact": contact}, headers=admin)
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["history"]
    return items


def test_one_click_unsubscribe_goes_through_consent(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    assert client.post("/api/templates", json=NEWS, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    assert _send(client, admin, "ada@example.com")["state"] == "sent"
    [msg] = smtp_sink.to("ada@example.com")
    path = msg["List-Unsubscribe"].strip("<>").removeprefix("https://hub.test")

    page = client.get(path)  # a GET (link scanner) changes nothing
    assert page.status_code == 200
    assert "ada@example.com" in page.text
    assert _send(client, admin, "ada@example.com")["state"] == "sent"

    forged = re.sub(r"\.(.)", lambda m: "." + ("A" if m.group(1) != "A" else "B"), path, count=1)
    r = client.post(forged, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 401
    assert "signature" in r.text

    r = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200, r.text
    [latest, *_] = _history(client, admin, "ada@example.com")
    assert (latest["group"], latest["status"], latest["reason"]) == (
        "newsletter",
        "unsubscribed",
        "link",
    )
    dropped = _send(client, admin, "ada@example.com")
    assert dropped["state"] == "dropped"
    assert "newsletter" in str(dropped["error"])
    assert len(smtp_sink.to("ada@example.com")) == 2


def test_preference_page_with_csrf(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    assert client.post("/api/templates", json=NEWS, headers=admin).status_code == 201
    subscribe(
        client, admin, "bo@example.com", groups=[{"name": "newsletter", "status": "SUBSCRIBED"}]
    )
    _send(client, admin, "bo@example.com")
    [msg] = smtp_sink.to("bo@example.com")
    token = msg["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200
    assert re.search(r"name='channel' value='on' checked", page.text)
    assert re.search(r"name='group:newsletter' value='on' checked", page.text)
    csrf = re.search(r"name='csrf' value='([^']+)'", page.text)
    assert csrf

    r = client.post(f"/preferences/{token}", data={"channel": "on"})  # no CSRF token
    assert r.status_code == 401
    r = client.post(f"/preferences/{token}", data={"channel": "on", "csrf": "1.AAAA"})
    assert r.status_code == 401
    assert _history(client, admin, "bo@example.com")[0]["reason"] == "api"

    r = client.post(f"/preferences/{token}", data={"channel": "on", "csrf": csrf.group(1)})
    assert r.status_code == 200
    assert "newsletter: unsubscribed" in r.text
    latest = _history(client, admin, "bo@example.com")[0]
    assert (latest["group"], latest["status"], latest["reason"]) == (
        "newsletter",
        "unsubscribed",
        "preferences",
    )
    page = client.get(f"/preferences/{token}")
    assert not re.search(r"name='group:newsletter' value='on' checked", page.text)
    # the person may resubscribe themselves
    csrf2 = re.search(r"name='csrf' value='([^']+)'", page.text)
    assert csrf2
    r = client.post(
        f"/preferences/{token}",
        data={"channel": "on", "group:newsletter": "on", "csrf": csrf2.group(1)},
    )
    assert "newsletter: subscribed" in r.text
    assert _send(client, admin, "bo@example.com")["state"] == "sent"
