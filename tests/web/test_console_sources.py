"""The Sources page in Chromium: add sources per vendor, receive a signed Twilio webhook at the
URL the page shows, send test events (Segment, SendGrid, Braze), see refusals, filter the list,
rotate a write key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser
from twilio.request_validator import RequestValidator

from tests.live import LiveServer
from tests.web.console import (
    api,
    audit,
    browser,
    keyboard_reaches,
    press_on,
    signed_in,
    start_server,
)

__all__ = ["browser"]
AUTH_TOKEN = "twilio-auth-token-for-the-console-test"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory.mktemp("sources"))


def _row_metric(page: object, source: str, metric: str) -> str:
    return page.locator(f"tr[data-source='{source}'] [data-metric={metric}]").inner_text()  # type: ignore[attr-defined]


def test_sources_page_end_to_end(live: LiveServer, browser: Browser, tmp_path: Path) -> None:
    page = signed_in(browser, live)
    page.goto(live.url + "/sources")
    audit(page, tmp_path / "screenshots", "sources-empty")

    # A Twilio source: the page shows the status callback URL; Twilio's signature on it works.
    page.get_by_label("Name").fill("sms")
    page.get_by_label("Kind").select_option("twilio")
    page.get_by_label("Secret", exact=False).first.fill(AUTH_TOKEN)
    page.get_by_role("button", name="Add source").click()
    page.wait_for_selector("#setup")
    audit(page, tmp_path / "screenshots", "source-created")
    status_url = page.locator("#setup dd code").first.inner_text()
    assert status_url == f"{live.url}/webhooks/twilio/sms/status"
    params = {"MessageSid": "SM0001", "MessageStatus": "delivered", "To": "+14155550100"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(status_url, params)
    r = httpx.post(status_url, data=params, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200, r.text
    forged = httpx.post(status_url, data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
    assert forged.status_code == 401

    # A bad name is refused on the Sources page itself, naming the rule.
    page.goto(live.url + "/sources")
    page.get_by_label("Name").fill("sms")
    page.get_by_label("Kind").select_option("twilio")
    page.get_by_role("button", name="Add source").click()
    page.wait_for_url("**/sources?error=*")
    assert "'sms'" in page.locator("#alert").inner_text()  # it exists already
    audit(page, tmp_path / "screenshots", "sources-error")

    # A Segment source: its key is shown once, the test-event button stores an event.
    page.goto(live.url + "/sources")
    page.get_by_label("Name").fill("web")
    page.get_by_label("Kind").select_option("segment")
    page.get_by_role("button", name="Add source").click()
    key = page.locator("#write-key").inner_text()
    page.goto(live.url + "/sources")
    assert keyboard_reaches(page) > 10
    press_on(page, "Send a test event to web")  # keyboard only
    page.wait_for_selector("[role=status]")
    assert "test event stored for web" in page.locator("[role=status]").inner_text()

    # Webhook kinds get the button too: a SendGrid and a Braze test event, in their formats.
    for name, kind, event in (
        ("mail", "sendgrid", "Email Delivered"),
        ("bz", "braze", "engagehub Test Event"),
    ):
        page.goto(live.url + "/sources")
        page.get_by_label("Name").fill(name)
        page.get_by_label("Kind").select_option(kind)
        page.get_by_role("button", name="Add source").click()
        page.wait_for_selector("#setup")
        page.goto(live.url + "/sources")
        page.get_by_role("button", name=f"Send a test event to {name}").click()
        page.wait_for_selector("[role=status]")
        notice = page.locator("[role=status]").inner_text()
        assert notice == f"test event stored for {name}: {event}"
    stored = api(live, "/api/events", params={"limit": 10})["events"]
    by_source = {e["source"]: e for e in stored}
    assert (by_source["mail"]["event"], by_source["mail"]["channel"]) == (
        "Email Delivered",
        "email",
    )
    assert by_source["bz"]["vendor_event"] == "engagehub Test Event"

    listed = {s["name"]: s for s in api(live, "/api/sources")["sources"]}
    assert listed["sms"]["events_today"] == 1
    assert listed["web"]["events_today"] == 1
    assert listed["mail"]["events_today"] == listed["bz"]["events_today"] == 1
    for name in ("sms", "web", "mail", "bz"):
        assert _row_metric(page, name, "events_today") == str(listed[name]["events_today"])
        assert _row_metric(page, name, "last_event_at") == listed[name]["last_event_at"]
    refused = page.locator("tr[data-vendor=twilio]")
    assert refused.locator("[data-metric=refused]").inner_text() == "1"
    assert "invalid_signature: 1" in refused.inner_text()
    metrics = httpx.get(live.url + "/metrics").text
    assert (
        'engagehub_events_rejected_total{reason="invalid_signature",vendor="twilio"} 1.0' in metrics
    )
    audit(page, tmp_path / "screenshots", "sources")

    # The list filters by name or kind, with plain GET links.
    page.get_by_role("searchbox", name="Filter sources").fill("TWILIO")
    page.get_by_role("button", name="Filter sources").click()
    assert page.locator("#sources tbody tr[data-source]").all_inner_texts()[0].startswith("sms")
    assert page.locator("#sources tbody tr[data-source]").count() == 1
    assert "sources_q=TWILIO" in page.url
    page.get_by_role("link", name="Show all sources").click()
    assert page.locator("#sources tbody tr[data-source]").count() == len(listed)

    # Rotate the write key (confirmed): the old key stops working, the new one works.
    page.get_by_role("button", name="Rotate the write key of web").click()
    page.wait_for_selector("#write-key")
    new_key = page.locator("#write-key").inner_text()
    assert new_key != key
    body = {"type": "track", "event": "Email Opened", "userId": "u1"}
    for k, status in ((key, 401), (new_key, 200)):
        auth = "Basic " + base64.b64encode(f"{k}:".encode()).decode()
        r = httpx.post(live.url + "/v1/track", json=body, headers={"Authorization": auth})
        assert r.status_code == status, r.text
    page.context.close()
