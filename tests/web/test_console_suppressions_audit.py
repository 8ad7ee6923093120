"""The Suppressions and Audit pages in Chromium: keyset pages that equal the API's pages,
filters, a confirmed removal; axe-core clean at both widths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.live import LiveServer
from tests.web.console import api, audit, browser, signed_in, start_server

__all__ = ["browser"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory.mktemp("suppressions"))


def _rows(page: object, attribute: str) -> list[str]:
    found = page.locator(f"tr[{attribute}]")  # type: ignore[attr-defined]
    return [found.nth(i).get_attribute(attribute) for i in range(found.count())]


def test_suppressions_and_audit_page_like_the_api(
    live: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    items = [
        {
            "contact": f"p{i:02d}@example.com",
            "channel": "email",
            "reason": "spam_complaint" if i % 4 == 0 else "manual",
        }
        for i in range(60)
    ]
    for i in range(0, 60, 20):  # three audited calls
        api(live, "/api/suppressions", "PUT", json={"suppressions": items[i : i + 20]})
    first = api(live, "/api/suppressions", params={"limit": 50})
    second = api(live, "/api/suppressions", params={"limit": 50, "cursor": first["next_cursor"]})

    page = signed_in(browser, live)
    page.goto(live.url + "/suppressions")
    key = [f"{r['contact']}/{r['channel']}" for r in first["suppressions"]]
    assert _rows(page, "data-suppression") == key
    audit(page, shots, "suppressions")
    page.get_by_role("link", name="Next suppressions").click()
    rest = [f"{r['contact']}/{r['channel']}" for r in second["suppressions"]]
    assert _rows(page, "data-suppression") == rest
    assert page.get_by_role("link", name="Next suppressions").count() == 0
    page.get_by_role("link", name="First suppressions").click()
    assert _rows(page, "data-suppression") == key

    page.get_by_label("Reason").first.select_option("spam_complaint")
    page.get_by_role("button", name="Filter").click()
    spam = api(live, "/api/suppressions", params={"reason": "spam_complaint"})["suppressions"]
    assert _rows(page, "data-suppression") == [f"{r['contact']}/email" for r in spam]
    assert len(spam) == 15
    page.get_by_role("button", name="Remove p00@example.com (email)").click()  # confirmed
    page.wait_for_selector("[role=status]")
    left = api(live, "/api/suppressions", params={"contact": "p00@example.com"})["suppressions"]
    assert left == []

    page.goto(live.url + "/audit")
    entries = api(live, "/api/audit", params={"limit": 100})["entries"]
    assert _rows(page, "data-entry") == [str(e["id"]) for e in entries][:50]
    page.get_by_label("Action contains").fill("suppressions")
    page.get_by_role("button", name="Filter").click()
    puts = [e for e in entries if "suppressions" in e["action"]]
    assert _rows(page, "data-entry") == [str(e["id"]) for e in puts]
    assert len(puts) == 4  # three PUTs and the removal
    audit(page, shots, "audit")
    page.context.close()
