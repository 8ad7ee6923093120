"""Segment's own browser library, ``@segment/analytics-next`` from npm, in headless Chromium.

The page is served from another origin than the hub (``localhost`` vs ``127.0.0.1``, another
port), so every call goes through a real CORS preflight; the library loads its settings from
the hub (``cdnURL``) and nothing else is configured for standard delivery. The first call's
acknowledgement is lost (the hub stores it, the browser sees the connection fail): the library
retries with the same messageId and the hub keeps the event once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Route, sync_playwright

from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store
from tests.live import LiveServer, live_server
from tests.npm import BROWSER_ARGS, chromium, package_file

TOKEN = "analytics-js-admin-token-0123456789"
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script src="/analytics-next.js"></script></head><body><h1>A shop</h1></body></html>"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A real server with one segment source per test page (fresh queues, separate counts)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ajs')}/engagehub.db"
    db = open_database(url, Settings(database_url=url))
    keys = {}
    with db.session() as conn:
        migrate(conn)
        for name in ("standard", "batching", "locked"):
            config = {"allowed_origins": ["http://elsewhere.example"]} if name == "locked" else {}
            keys[name] = source_store.create(conn, name, "segment", config=config)[1]
    db.close()
    env = {"ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": TOKEN}
    with live_server(env) as live:
        yield live, keys


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web developer's site: a page and the library's UMD bundle, on its own origin."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PAGE)
    bundle = package_file("@segment/analytics-next", "dist/umd/index.js")
    (root / "analytics-next.js").write_bytes(bundle.read_bytes())
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        yield launched
        launched.close()


def stored(live: LiveServer, source: str, want: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The source's events once ``want`` arrived (the library's promises resolve before that)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(
            live.url + "/api/events",
            params={"source": source, "order": "asc", "limit": 1000},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        if len(events) >= want or time.monotonic() > deadline:
            time.sleep(0.5 if len(events) >= want else 0)  # and not more than that
            return events if len(events) < want else _final(live, source)
        time.sleep(0.2)


def _final(live: LiveServer, source: str) -> list[dict[str, Any]]:
    r = httpx.get(
        live.url + "/api/events",
        params={"source": source, "order": "asc", "limit": 1000},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    events: list[dict[str, Any]] = r.json()["events"]
    return events


SCRIPT = """async ([writeKey, cdnURL, options]) => {
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load({writeKey, cdnURL}, options);
  const sent = [];
  const keep = (ctx) => sent.push([ctx.event.type, ctx.event.messageId]);
  keep(await analytics.track('Email Opened', {message_id: 'msg-1', campaign_id: 'spring'}));
  keep(await analytics.identify('user-1', {email: 'user-1@example.com', plan: 'pro'}));
  keep(await analytics.page('Shop', 'Home', {path: '/'}));
  keep(await analytics.screen('App', 'Cart'));
  keep(await analytics.group('org-1', {name: 'Org'}));
  keep(await analytics.alias('user-1', 'anon-1'));
  return sent;
}"""


bodies: list[str] = []  # every POST body the browser sent, across the tests of this module


def run_page(
    browser: Browser, site: str, hub_url: str, key: str, options: dict[str, Any], lose: str = ""
) -> tuple[list[list[str]], list[str], list[str]]:
    """Load the library on the site's page and make the six calls; returns what the page sent,
    its errors, and the hub URLs the browser requested."""
    bodies.clear()
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requested.append(r.method + " " + r.url))
    page.on("request", lambda r: bodies.append(r.post_data or "") if r.method == "POST" else None)
    answered: list[str] = []
    page.on("response", lambda r: answered.append(r.url))

    def lose_ack(route: Route) -> None:
        route.fetch()  # the hub receives, stores and acknowledges...
        route.abort("connectionreset")  # ...and the acknowledgement never reaches the page

    if lose:
        page.route(hub_url + lose, lose_ack, times=1)
    page.goto(site + "/index.html")
    sent: list[list[str]] = page.evaluate(SCRIPT, [key, hub_url, options])
    deadline = time.monotonic() + 20
    while lose and hub_url + lose not in answered and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # the retry (after a random backoff) has its answer
    page.wait_for_timeout(300)
    context.close()
    return sent, errors, requested


def check(events: list[dict[str, Any]], sent: list[list[str]]) -> None:
    """Every call the page made is stored exactly once, as the page described it."""
    assert [(e["type"], e["raw"]["messageId"]) for e in events] == [tuple(s) for s in sent]
    by_type = {e["type"]: e for e in events}
    assert by_type["track"]["event"] == "Email Opened"
    assert by_type["track"]["message_id"] == "msg-1"
    assert by_type["track"]["campaign_id"] == "spring"
    assert by_type["identify"]["user_id"] == "user-1"
    assert by_type["identify"]["properties"]["plan"] == "pro"
    assert by_type["identify"]["contact"] == "user-1@example.com"
    assert by_type["page"]["vendor_event"] == "Home"
    assert by_type["screen"]["vendor_event"] == "Cart"
    assert by_type["group"]["properties"]["group_id"] == "org-1"
    assert by_type["alias"]["properties"]["previous_id"] == "anon-1"
    anonymous = {e["anonymous_id"] for e in events}
    assert len(anonymous) == 1  # one browser, one anonymousId
    assert None not in anonymous


def test_standard_delivery_with_a_lost_acknowledgement(
    hub: tuple[LiveServer, dict[str, str]], site: str, browser: Browser
) -> None:
    live, keys = hub
    sent, errors, requested = run_page(browser, site, live.url, keys["standard"], {}, "/v1/t")
    assert errors == []
    assert len(sent) == 6
    events = stored(live, "standard", 6)
    check(events, sent)
    # The settings came from the hub, the calls went to the short paths, the track call twice.
    assert f"GET {live.url}/v1/projects/{keys['standard']}/settings" in requested
    posts = [r.split(live.url, 1)[1] for r in requested if r.startswith("POST " + live.url)]
    assert posts.count("/v1/t") >= 2  # the lost one, then its retry
    assert set(posts) <= {"/v1/t", "/v1/i", "/v1/p", "/v1/s", "/v1/g", "/v1/a"}  # no /v1/m either
    assert not any("/analytics-next/bundles/" in r for r in requested)


def test_batching_delivery(
    hub: tuple[LiveServer, dict[str, str]], site: str, browser: Browser
) -> None:
    live, keys = hub
    options = {
        "integrations": {
            "Segment.io": {
                "apiHost": live.url.split("://", 1)[1] + "/v1",
                "protocol": "http",
                "deliveryStrategy": {"strategy": "batching", "config": {"size": 4, "timeout": 200}},
            }
        }
    }
    sent, errors, requested = run_page(browser, site, live.url, keys["batching"], options, "/v1/b")
    assert errors == []
    events = stored(live, "batching", 6)
    check(events, sent)
    posts = [r.split(live.url, 1)[1] for r in requested if r.startswith("POST " + live.url)]
    assert set(posts) == {"/v1/b"}
    assert len(posts) >= 2
    posted = [e["messageId"] for b in bodies for e in orjson.loads(b)["batch"]]
    assert len(posted) > len(set(posted)) == 6  # the lost batch's events were sent again


def test_a_source_limited_to_other_origins_refuses_the_page(
    hub: tuple[LiveServer, dict[str, str]], site: str, browser: Browser
) -> None:
    live, keys = hub
    context = browser.new_context()
    page = context.new_page()
    page.goto(site + "/index.html")
    answer = page.evaluate(
        """async (url) => { const r = await fetch(url); return [r.status, await r.json()]; }""",
        f"{live.url}/v1/projects/{keys['locked']}/settings",
    )
    context.close()
    status, body = answer
    assert status == 403  # the page could read the refusal: the reply carried the CORS header
    assert body["error"]["details"]["origin"] == site
    assert stored(live, "locked", 0, timeout=0) == []
