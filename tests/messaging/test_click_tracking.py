"""Our own tracked links over real SMTP and HTTP: the redirect records each click, HEAD probes,
the hidden honeypot link and clicks too soon after the send are flagged, never dropped."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engagehub.messaging import click_pages, links, tracking
from engagehub.settings import Settings
from engagehub.timeutil import now_ms
from tests.conftest import app_hub
from tests.messaging.conftest import Sink, subscribe

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
LINKS = {
    "shop": "https://shop.test/spring?utm_source=mail&x=1",
    "blog": "https://shop.test/blog",
    "help": "https://help.shop.test/",
}
NEWS = {
    "name": "news",
    "channel": "email",
    "subject": "Spring",
    "html": "<html><body>"
    + "".join(f"<p><a href='{u.replace('&', '&amp;')}'>{n}</a></p>" for n, u in LINKS.items())
    + "<p><a href='{{ preferences_url }}'>Preferences</a></p></body></html>",
    "text": "Spring: https://shop.test/spring",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The messaging settings; clicks within 30 s of the send are a scanner's."""
    return settings.model_copy(update={"bot_click_min_seconds": 30.0})


def sent_links(client: TestClient, admin: dict[str, str], sink: Sink) -> tuple[str, list[str]]:
    assert client.post("/api/templates", json=NEWS, headers=admin).status_code == 201
    subscribe(client, admin, "ada@example.com")
    r = client.post("/api/sends", json={"template": "news", "to": "ada@example.com"}, headers=admin)
    assert r.json()["state"] == "sent", r.text
    [msg] = sink.to("ada@example.com")
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return r.json()["message_id"], re.findall(r"href=['\"]([^'\"]+)['\"]", html)


def clicks(client: TestClient, admin: dict[str, str], mid: str) -> list[dict[str, Any]]:
    r = client.get(
        "/api/events",
        params={"message_id": mid, "event": "Email Link Clicked", "order": "asc"},
        headers=admin,
    )
    found: list[dict[str, Any]] = r.json()["events"]
    return found


def lifecycle(client: TestClient, mid: str, column: str) -> Any:
    hub = app_hub(client)
    for _ in range(200):
        with hub.db.reader() as conn:
            value = conn.scalar(
                f"SELECT {column} FROM analytics_messages WHERE message_id = ?", (mid,)
            )
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{column} of {mid} never set")


def test_links_are_tracked_and_machines_are_flagged(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    mid, hrefs = sent_links(client, admin, smtp_sink)
    tracked = [h for h in hrefs if h.startswith("https://hub.test/c/")]
    own = [h for h in hrefs if h.startswith("https://hub.test/preferences/")]
    assert len(tracked) == 4  # three links and the honeypot
    assert len(own) == 1  # our own pages are never wrapped
    assert any(h.startswith("https://hub.test/unsubscribe/") for h in hrefs)  # the footer link
    [msg] = smtp_sink.to("ada@example.com")
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert re.search(
        r'<a href="https://hub.test/c/[^"]+" aria-hidden="true"[^>]*display:none', html
    )
    targets = {}
    for href in tracked:
        token = href.rsplit("/", 1)[1]
        hub = app_hub(client)
        with hub.db.reader() as conn:
            key = links.secret_key(conn, hub.settings)
        message, url = tracking.verify(key, token)
        assert message == mid
        targets[url] = token
    assert set(targets) == {*LINKS.values(), tracking.HONEYPOT}

    shop = f"/c/{targets[LINKS['shop']]}"
    r = client.get(shop, headers={"User-Agent": FIREFOX}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (302, LINKS["shop"])  # too soon: flagged
    r = client.head(
        f"/c/{targets[LINKS['blog']]}", headers={"User-Agent": FIREFOX}, follow_redirects=False
    )
    assert (r.status_code, r.headers.get("location")) == (302, LINKS["blog"])
    r = client.get(f"/c/{targets[tracking.HONEYPOT]}", follow_redirects=False)
    assert r.status_code == 204
    hub = app_hub(client)
    with hub.db.session() as conn, conn.transaction():  # as if sent a minute ago
        conn.execute(
            "UPDATE message_sends SET updated_at = updated_at - 60000 WHERE id = ?", (mid,)
        )
    time.sleep(1.1)  # past the burst window of the three clicks above
    frozen = now_ms()  # the next two clicks in one second, however slow the machine is
    monkeypatch.setattr(click_pages, "now_ms", lambda: frozen)
    r = client.get(shop, headers={"User-Agent": FIREFOX}, follow_redirects=False)
    assert r.status_code == 302
    r = client.get(shop, headers={"User-Agent": FIREFOX}, follow_redirects=False)
    assert r.status_code == 302  # the same second, link and agent: one event
    found = clicks(client, admin, mid)
    assert [
        (e["properties"]["http_method"], e["properties"].get("bot_click_reason")) for e in found
    ] == [
        ("GET", "too_fast"),
        ("HEAD", "head_request"),
        ("GET", "hidden_link"),
        ("GET", None),
    ]
    human = found[-1]
    assert human["contact"] == "ada@example.com"
    assert human["properties"]["url"] == LINKS["shop"]
    assert human["properties"]["user_agent"] == FIREFOX
    assert found[0]["properties"]["sent_at"] - human["properties"]["sent_at"] == 60_000
    assert "bot_click" not in human["properties"]
    # stats: one human click next to the machines' (all four counted, none dropped)
    assert lifecycle(client, mid, "first_clicked") >= lifecycle(client, mid, "first_bot_clicked")
    hub = app_hub(client)
    for _ in range(200):
        with hub.db.reader() as conn:
            row = conn.one(
                "SELECT SUM(clicks) AS clicks, SUM(bot_clicks) AS bots "
                "FROM analytics_message_hours WHERE message_id = ?",
                (mid,),
            )
        if row and row["clicks"] == 1 and row["bots"] == 3:
            break
        time.sleep(0.05)
    assert row is not None
    assert (row["clicks"], row["bots"]) == (1, 3)


def test_forged_or_altered_links_redirect_nowhere(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    mid, hrefs = sent_links(client, admin, smtp_sink)
    token = next(h for h in hrefs if h.startswith("https://hub.test/c/")).rsplit("/", 1)[1]
    mid_part, url_part, mac = token.split(".")
    evil = tracking.sign(b"not our key", mid, "https://evil.test/")
    other_url = tracking.sign(b"k", mid, "https://evil.test/").split(".")[1]
    altered = f"{mid_part}.{other_url}.{mac}"  # our signature, another URL
    for bad in (evil, altered, "x", "a.b", f"{mid_part}.{url_part}"):
        r = client.get(f"/c/{bad}", follow_redirects=False)
        assert r.status_code in (400, 401, 404), (bad, r.status_code)
        assert "location" not in r.headers
    assert clicks(client, admin, mid) == []
    # the genuine token still works
    assert client.get(f"/c/{token}", follow_redirects=False).status_code in (204, 302)


def test_rewrite_tracks_every_outside_link_and_adds_one_hidden_link() -> None:
    key, base, mid = b"k" * 32, "https://hub.test", "m-1"
    source = (
        "<p><A HREF='https://a.test/x?u=1&amp;v=2'>a</A> <a class=x href=\"http://b.test\">b</a>"
        ' <a href="https://hub.test/unsubscribe/t">u</a> <a href="mailto:x@y.z">m</a>'
        ' <a href="#top">t</a></p>'
    )
    out = tracking.rewrite(source, base, key, mid)
    found = re.findall(r"href=['\"]([^'\"]+)['\"]", out, re.IGNORECASE)
    targets = [
        tracking.verify(key, h.rsplit("/", 1)[1])[1] if h.startswith(f"{base}/c/") else h
        for h in found
    ]
    assert targets == [
        "https://a.test/x?u=1&v=2",  # the URL as the browser would follow it
        "http://b.test",
        "https://hub.test/unsubscribe/t",  # our own page: as it was
        "mailto:x@y.z",
        "#top",
        tracking.HONEYPOT,
    ]
    assert out.endswith('"></a>\n')  # no </body>: appended
    assert all(len(line) <= 998 for line in out.splitlines())
