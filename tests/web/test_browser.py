"""The dashboard in headless Chromium against a real ``serve`` process (SQLite).

Pages render, Chart.js draws (non-blank canvas pixels, chart data = API numbers), the numbers
on the page equal the API's, no CSP violation or script error occurs, and the live page shows
an event ingested after it loaded.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store
from tests.analytics.test_api import basic, sent, track
from tests.live import LiveServer, live_server
from tests.web.console import errors, watch

TOKEN = "browser-admin-token-0123456789"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser')}/engagehub.db"
    db = open_database(url, Settings(database_url=url))
    with db.session() as conn:
        migrate(conn)
        _, key = source_store.create(conn, "web", "segment")
    db.close()
    env = {"ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": TOKEN}
    with live_server(env) as live:
        T = 1772445600
        batch = [sent(f"m{i}", f"u{i}", "AB"[i % 2], T + i * 3600) for i in range(6)]
        batch += [
            track(f"m{i}", "Email Delivered", T + i * 3600 + 60, f"u{i}", message_id=f"m{i}")
            for i in range(5)
        ]
        batch += [
            track(f"m{i}", "Email Opened", T + i * 3600 + 600, f"u{i}", message_id=f"m{i}")
            for i in range(3)
        ]
        r = httpx.post(live.url + "/v1/batch", json={"batch": batch}, headers=basic(key))
        assert r.status_code == 200, r.text
        yield live, key


@pytest.fixture(scope="module")
def page(server: tuple[LiveServer, str]) -> Iterator[Page]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (scripts/test installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        context = browser.new_context()
        yield watch(context.new_page())
        browser.close()


def api(server: tuple[LiveServer, str], path: str) -> Any:
    r = httpx.get(server[0].url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_login_campaign_charts_and_numbers(page: Page, server: tuple[LiveServer, str]) -> None:
    live, _ = server
    page.goto(live.url + "/")
    assert page.url.endswith("/login")
    page.get_by_label("Admin token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert "not valid" in page.locator("[role=alert]").inner_text()
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("table#campaigns")
    listed = api(server, "/api/campaigns")["campaigns"][0]
    row = page.locator("tr[data-campaign=spring]")
    assert row.locator("[data-metric=sent]").inner_text() == str(listed["totals"]["sent"]) == "6"
    row.get_by_role("link").click()
    page.wait_for_function("() => window.engagehubCharts && window.engagehubCharts.series")
    stats = api(server, "/api/campaigns/spring/stats")
    for key in ("sent", "delivered", "opens_unique", "clicks_unique", "conversions"):
        shown = page.locator(f"dd[data-metric={key}]").inner_text()
        assert shown == str(stats["totals"][key]), key
    funnel = page.evaluate("window.engagehubCharts.funnel.data.datasets[0].data")
    assert funnel == [
        stats["totals"][k]
        for k in ("sent", "delivered", "opens_unique", "clicks_unique", "conversions")
    ]
    series_sent = page.evaluate("window.engagehubCharts.series.data.datasets[0].data")
    assert series_sent == [p["sent"] for p in stats["series"]["points"]]
    assert sum(series_sent) == 6
    for canvas in ("funnel", "series"):
        painted = page.evaluate(
            """(id) => { const c = document.getElementById(id);
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
            canvas,
        )
        assert painted > 500, canvas
    # Filter by variation through the form.
    page.get_by_label("Variation", exact=True).fill("B")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/campaigns/spring?variation=B")
    only_b = api(server, "/api/campaigns/spring/stats?variation=B")
    assert page.locator("dd[data-metric=sent]").inner_text() == str(only_b["totals"]["sent"]) == "3"
    assert errors(page) == []


def test_message_lookup_and_live_stream(page: Page, server: tuple[LiveServer, str]) -> None:
    live, key = server
    page.goto(live.url + "/")
    page.get_by_label("Message id, user id, email or phone").fill("m0")
    page.get_by_role("button", name="Look up").click()
    page.wait_for_url("**/messages/m0")
    assert page.locator("#status").inner_text() == api(server, "/api/messages/m0")["status"]
    assert page.locator("#timeline li").count() == 3
    page.goto(live.url + "/live")
    page.wait_for_selector("#live-rows tr")
    before = page.locator("#live-rows tr").count()
    r = httpx.post(
        live.url + "/v1/batch",
        json={"batch": [track("m0", "Email Link Clicked", 1772450000, "u0", message_id="m0")]},
        headers=basic(key),
    )
    assert r.status_code == 200
    page.wait_for_function(
        "(n) => document.querySelectorAll('#live-rows tr').length > n", arg=before
    )
    assert "Email Link Clicked" in page.locator("#live-rows tr").first.inner_text()
    assert errors(page) == []


def test_no_inline_script_in_templates() -> None:
    templates = Path(__file__).resolve().parents[2] / "engagehub" / "web" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert "<script>" not in text, template.name
        assert " on" + "click=" not in text, template.name
