"""The System page in Chromium: lag, unmapped names and masked settings equal ``/api/system``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from engagehub.ops.status import masked_url
from tests.live import LiveServer
from tests.web.console import TOKEN, api, audit, browser, signed_in, start_server

__all__ = ["browser"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory.mktemp("system"))


def test_system_page_matches_the_api(live: LiveServer, browser: Browser, tmp_path: Path) -> None:
    key = api(live, "/api/sources", "POST", json={"name": "web", "kind": "segment"})["write_key"]
    batch = [
        {"type": "track", "event": name, "userId": "u1", "messageId": f"{name}-{i}"}
        for i, name in enumerate(["Coupon Scratched", "Coupon Scratched", "Email Opened"])
    ]
    r = httpx.post(live.url + "/v1/batch", json={"batch": batch, "writeKey": key})
    assert r.status_code == 200, r.text
    status = api(live, "/api/system")
    while status["unmapped"] == [] or any(lag["events"] for lag in status["lag"]):
        status = api(live, "/api/system")  # processors apply the batch right after its commit
    page = signed_in(browser, live)
    page.goto(live.url + "/system")
    assert page.locator("[data-metric=version]").inner_text() == status["version"]
    assert page.locator("[data-metric=log_head]").inner_text() == str(status["log_head"]) == "3"
    assert page.locator("[data-metric=backend]").inner_text() == "sqlite"
    row = page.locator("tr[data-unmapped='Coupon Scratched']")
    assert row.locator("[data-metric=count]").inner_text() == "2"
    assert status["unmapped"][0]["count"] == 2
    for lag in status["lag"]:
        shown = page.locator(f"tr[data-lag='{lag['kind']}/{lag['name']}'] [data-metric=events]")
        assert shown.inner_text() == str(lag["events"])
    token_row = page.locator("tr[data-setting=admin_token]").inner_text()
    assert TOKEN not in page.content()
    assert "********" in token_row
    audit(page, tmp_path / "screenshots", "system")
    page.context.close()


def test_database_passwords_are_masked() -> None:
    assert masked_url("postgresql://eh:s3cret@db.example:5433/eh") == (
        "postgresql://eh:********@db.example:5433/eh"
    )
    assert masked_url("sqlite:///./engagehub.db") == "sqlite:///./engagehub.db"
