"""The Destinations page in Chromium: a webhook refuses a batch (dead letter with the receiver's
answer), pause holds delivery, resume delivers, replaying the dead letter from the page works."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.destinations.receiver import receiver
from tests.live import LiveServer
from tests.waiting import eventually
from tests.web.console import api, audit, browser, signed_in, start_server

__all__ = ["browser"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS": "true",
        "ENGAGEHUB_DESTINATION_BACKOFF_SECONDS": "0.1",
    }
    yield from start_server(tmp_path_factory.mktemp("destinations"), env)


def until(check: Callable[[], Any], timeout: float = 20) -> Any:
    return eventually(check, timeout, 0.1)


def dest(live: LiveServer) -> dict[str, Any]:
    found: dict[str, Any] = api(live, "/api/destinations/hook")
    return found


def shown(page: Page, metric: str) -> str:
    return page.locator(f"[data-destination=hook] [data-metric={metric}]").inner_text()


def test_dead_letters_pause_resume_and_replay(
    live: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    key = api(live, "/api/sources", "POST", json={"name": "web", "kind": "segment"})["write_key"]
    with receiver() as rec:
        rec.script = [("status", 400)]
        body = {"name": "hook", "kind": "webhook", "url": rec.url, "batch": 10, "secret": "whsec"}
        api(live, "/api/destinations", "POST", json=body)
        send(live, key, ["m1", "m2", "m3"])
        until(lambda: dest(live)["dead_lettered"] == 3)  # events, in one dead letter
        page = signed_in(browser, live)
        page.goto(live.url + "/destinations")
        d = dest(live)
        for metric in ("lag", "delivered", "failures", "dead_lettered"):
            assert shown(page, metric) == str(d[metric]), metric
        letters = api(live, "/api/destinations/hook/dead-letters")["dead_letters"]
        assert len(letters) == 1
        row = page.locator(f"tr[data-letter='{letters[0]['id']}']")
        assert "400" in row.inner_text()
        audit(page, shots, "destinations-dead-letter")

        # Paused, a new event waits; resumed, it is delivered.
        page.get_by_role("button", name="Pause hook").click()
        page.wait_for_selector("[role=status]")
        assert shown(page, "state") == "paused"
        assert dest(live)["paused"] is True
        send(live, key, ["m4"])
        time.sleep(1)
        assert rec.received == []
        assert dest(live)["lag"] >= 1
        page.get_by_role("button", name="Resume hook").click()
        page.wait_for_selector("[role=status]")
        rec.wait_for(1)
        assert [e["message_id"] for e in events_of(rec.received[0].json())] == ["m4"]

        # Replay the dead letter (confirmed): the receiver gets the three refused events.
        page.get_by_role("button", name=f"Replay dead letter {letters[0]['id']}").click()
        page.wait_for_selector("[role=status]")
        rec.wait_for(2)
        assert sorted(e["message_id"] for e in events_of(rec.received[1].json())) == [
            "m1",
            "m2",
            "m3",
        ]
        until(
            lambda: (
                api(live, "/api/destinations/hook/dead-letters")["dead_letters"][0]["status"]
                == "replayed"
            )
        )
        page.goto(live.url + "/destinations")
        assert row.locator("[data-metric=status]").inner_text() == "replayed"
        assert shown(page, "lag") == str(dest(live)["lag"]) == "0"
        audit(page, shots, "destinations")
        page.context.close()


def send(live: LiveServer, key: str, ids: list[str]) -> None:
    batch = [
        {
            "type": "track",
            "event": "Email Opened",
            "userId": "u",
            "messageId": m,
            "properties": {"message_id": m},
        }
        for m in ids
    ]
    r = httpx.post(live.url + "/v1/batch", json={"batch": batch, "writeKey": key})
    assert r.status_code == 200, r.text


def events_of(body: Any) -> list[dict[str, Any]]:
    """The events of a webhook batch."""
    events: list[dict[str, Any]] = body["events"]
    return events
