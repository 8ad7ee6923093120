"""Dashboard over real ASGI on both backends: login, cookies, CSRF, CSP, numbers = API's."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.analytics.test_api import ingest_story
from tests.conftest import ADMIN_TOKEN


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def login(client: TestClient) -> str:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"token": ADMIN_TOKEN, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http in tests; https sets it (see below)
    home = client.get("/")
    assert home.status_code == 200
    return csrf_of(home.text)


def test_login_required_and_bad_tokens(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    page = client.get("/login")
    assert "default-src 'self'; script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline scripts anywhere
    wrong = client.post("/login", data={"token": "nope", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 200  # the page again; the rate limiter counts a failure
    assert "not valid" in wrong.text
    assert client.get("/", follow_redirects=False).status_code == 303
    forged = client.post("/login", data={"token": ADMIN_TOKEN, "csrf": "forged"})
    assert "expired" in forged.text
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set("engagehub_dashboard", "eyJleHAiOjl9.c2ln")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_secure_cookie_behind_https_proxy(client: TestClient) -> None:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"token": ADMIN_TOKEN, "csrf": csrf_of(page.text)},
        headers={"x-forwarded-proto": "https"},
        follow_redirects=False,
    )
    assert "Secure" in r.headers["set-cookie"]


def test_pages_show_the_api_numbers(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    ingest_story(client, db)
    client.post(
        "/api/goals",
        json={"campaign": "spring", "event": "Order Completed", "within": "72h"},
        headers=admin,
    )
    csrf = login(client)
    api = client.get("/api/campaigns/spring/stats", headers=admin).json()
    home = client.get("/")
    assert 'href="/campaigns/spring"' in home.text
    page = client.get("/campaigns/spring")
    assert page.status_code == 200
    for key, value in api["totals"].items():
        assert f'<dd data-metric="{key}">{value}</dd>' in page.text
    assert "https://shop.test/spring" in page.text
    assert "550 5.1.1 unknown user" in page.text
    assert 'id="chart-data"' in page.text
    # The filter form redirects to the filtered page (CSRF checked).
    r = client.post(
        "/campaigns/spring/filter",
        data={"csrf": csrf, "variation": "B", "from": "", "to": ""},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/campaigns/spring?variation=B"
    filtered = client.get(r.headers["location"])
    only_b = client.get("/api/campaigns/spring/stats?variation=B", headers=admin).json()
    assert f'<dd data-metric="sent">{only_b["totals"]["sent"]}</dd>' in filtered.text
    bad = client.post("/campaigns/spring/filter", data={"csrf": "nope"}, follow_redirects=False)
    assert bad.status_code == 400
    # Message lookup and timeline.
    r = client.post(
        "/lookup", data={"csrf": csrf, "kind": "message", "q": "m1"}, follow_redirects=False
    )
    assert r.headers["location"] == "/messages/m1"
    msg = client.get("/messages/m1")
    assert '<dd id="status">clicked</dd>' in msg.text
    assert msg.text.count("<li>") == 5
    missing = client.get("/messages/nope")
    assert missing.status_code == 404
    assert "no message" in missing.text
    # Profile page (identities from the profiles processor).
    r = client.post(
        "/lookup", data={"csrf": csrf, "kind": "profile", "q": "u1"}, follow_redirects=False
    )
    profile = client.get(r.headers["location"])
    assert profile.status_code == 200
    assert "user_id: u1" in profile.text
    # Live stream: the page shows the latest, the JSON endpoint what follows a position.
    live = client.get("/live")
    assert "Order Completed" in live.text
    newer = client.get("/live/events?after=0").json()["events"]
    assert len(newer) >= 11
    assert [e["seq"] for e in newer] == sorted(e["seq"] for e in newer)
    # Logout needs the CSRF token, then the session is gone.
    assert (
        client.post("/logout", data={"csrf": "nope"}, follow_redirects=False).headers["location"]
        == "/"
    )
    client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.get("/live/events").status_code == 401


def test_static_files(client: TestClient) -> None:
    chart = client.get("/static/chart.umd.js")
    assert chart.status_code == 200
    assert chart.text.startswith("/*!\n * Chart.js v4.6.1")
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../settings.py").status_code == 404
