"""The analytics pages (campaigns, a campaign, a message, a profile, the live log, login, a
not-found page) pass the same checks as the console pages: no console error, axe-core clean,
no sideways scroll at phone width, screenshots; their lists filter like the API's numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.analytics.test_api import basic, sent, track
from tests.live import LiveServer
from tests.web.console import (
    PHONE,
    WIDE,
    api,
    audit,
    browser,
    errors,
    signed_in,
    start_server,
    watch,
)

__all__ = ["browser"]
T = 1772445600


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory.mktemp("analytics"))


def test_analytics_pages_are_accessible(live: LiveServer, browser: Browser, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    key = api(live, "/api/sources", "POST", json={"name": "web", "kind": "segment"})["write_key"]
    batch = [sent(f"m{i}", f"u{i}", "AB"[i % 2], T + i * 3600) for i in range(4)]
    batch += [
        track(
            f"m{i}",
            "Email Link Clicked",
            T + i * 3600 + 60,
            f"u{i}",
            message_id=f"m{i}",
            url=f"https://shop.test/{i}",
        )
        for i in range(4)
    ]
    identify = {"type": "identify", "userId": "u0", "traits": {"email": "u0@example.com"}}
    r = httpx.post(live.url + "/v1/batch", json={"batch": [*batch, identify]}, headers=basic(key))
    assert r.status_code == 200, r.text

    anonymous = watch(browser.new_page(viewport=WIDE))
    anonymous.goto(live.url + "/login")
    audit(anonymous, shots, "login")
    anonymous.close()

    page = signed_in(browser, live)
    page.goto(live.url + "/")
    page.wait_for_selector("tr[data-campaign=spring]")
    audit(page, shots, "campaigns")
    page.goto(live.url + "/campaigns/spring")
    links = api(live, "/api/campaigns/spring/stats")["top_links"]
    assert page.locator("#top-links tbody tr").count() == len(links) == 4
    audit(page, shots, "campaign")
    page.get_by_role("searchbox", name="Filter links").fill("shop.test/2")
    page.get_by_role("button", name="Filter links").click()
    assert page.locator("#top-links tbody tr").all_inner_texts() == [
        f"{x['url']}\t{x['clicks_unique']}\t{x['clicks_total']}"
        for x in links
        if "shop.test/2" in x["url"]
    ]
    page.goto(live.url + "/messages/m0")
    audit(page, shots, "message")
    page.goto(live.url + "/profiles/u0")
    audit(page, shots, "profile")
    page.goto(live.url + "/live")
    page.wait_for_selector("#live-rows tr")
    audit(page, shots, "live")
    page.goto(live.url + "/messages/nope")
    errors(page).clear()  # the 404 itself is a console error
    page.set_viewport_size(PHONE)
    page.set_viewport_size(WIDE)
    audit(page, shots, "not-found")
    page.context.close()
