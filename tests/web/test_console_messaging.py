"""The Messaging page in Chromium: write a template with a live preview from a test profile
(merge-tag errors inline), save, test-send to a local SMTP server, create, start and pause a
broadcast; SMS previews count segments. Numbers equal the API's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser

from engagehub.bench.ingest import free_port
from tests.live import LiveServer
from tests.messaging.conftest import Sink
from tests.web.console import api, audit, browser, signed_in, start_server

__all__ = ["browser"]
PEOPLE = ["ada", "bo", "cy", "di", "ed", "fay"]


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    port = free_port()
    found = Sink(port)
    controller = Controller(found, hostname="127.0.0.1", port=port)
    controller.start()
    yield found
    controller.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[LiveServer]:
    env = {"ENGAGEHUB_SMTP_PORT": str(sink.port), "ENGAGEHUB_EMAIL_FROM": "news@shop.test"}
    yield from start_server(tmp_path_factory.mktemp("messaging"), env)


def people(live: LiveServer) -> None:
    key = api(live, "/api/sources", "POST", json={"name": "web", "kind": "segment"})["write_key"]
    for name in PEOPLE:
        traits = {"email": f"{name}@example.com", "first_name": name.title(), "plan": "pro"}
        r = httpx.post(
            live.url + "/v1/identify", json={"userId": name, "traits": traits, "writeKey": key}
        )
        assert r.status_code == 200, r.text
    items = [{"key": f"{n}@example.com", "type": "EMAIL", "status": "SUBSCRIBED"} for n in PEOPLE]
    api(live, "/api/subscriptions", "PUT", json={"subscriptions": items})
    api(live, "/api/audiences", "POST", json={"name": "pros", "channel": "email"})
    sms = {"name": "sms-hello", "channel": "sms", "body": "Hi {{ profile.first_name }} ✓ " * 20}
    api(live, "/api/templates", "POST", json=sms)


def test_template_editor_test_send_and_broadcast(
    live: LiveServer, browser: Browser, sink: Sink, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    people(live)
    deadline = time.monotonic() + 20
    while api(live, "/api/audiences/pros")["size"] < len(PEOPLE):
        assert time.monotonic() < deadline, "profiles and consent did not settle"
        time.sleep(0.2)
    page = signed_in(browser, live)
    page.goto(live.url + "/messaging")
    assert page.locator("tr[data-audience=pros] [data-metric=size]").inner_text() == "6"
    audit(page, shots, "messaging-empty")

    # A new email template, previewed with Ada's traits: the unknown tag is named inline.
    page.get_by_label("New template named").fill("promo")
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Subject (Liquid)").fill("Hi {{ profile.first_name }}{{ profile.nickname }}")
    page.get_by_label("Text body (Liquid)").fill("Deals for {{ profile.plan }} members")
    page.get_by_label("Test profile", exact=False).fill("ada@example.com")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#preview-subject").inner_text() == "Hi Ada"
    assert "Deals for pro members" in page.locator("#preview-text").inner_text()
    assert "profile.nickname" in page.locator("#missing").inner_text()
    audit(page, shots, "template-editor")
    page.get_by_label("Subject (Liquid)").fill("Hi {{ profile.first_name }}")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("[role=status]")
    assert "template saved" in page.locator("[role=status]").inner_text()
    stored = api(live, "/api/templates/promo")
    assert stored["subject"] == "Hi {{ profile.first_name }}"
    api_preview = api(
        live, "/api/templates/promo/preview", "POST", json={"profile": "ada@example.com"}
    )
    assert page.locator("#preview-subject").inner_text() == api_preview["subject"] == "Hi Ada"

    # Test send (confirmed) to the local SMTP server.
    page.get_by_label("Send the saved template to").fill("ada@example.com")
    page.get_by_role("button", name="Send test").click()
    page.wait_for_selector("[role=status]")
    assert "test send to ada@example.com: sent" in page.locator("[role=status]").inner_text()
    [message] = sink.to("ada@example.com")
    assert "Hi" in message["Subject"]
    assert "TEST" in message["Subject"]

    # An SMS template's preview counts its segments.
    page.goto(live.url + "/messaging/templates/sms-hello")
    sms = api(live, "/api/templates/sms-hello/preview", "POST", json={"strict": False})["sms"]
    assert page.locator("#segments").inner_text().startswith(f"{sms['segments']} SMS segments")
    assert sms["encoding"] == "UCS-2"
    assert sms["segments"] > 1

    # A broadcast: created as a draft, started (confirmed), paused; numbers as the API's.
    page.goto(live.url + "/messaging")
    page.get_by_label("Broadcast name").fill("spring")
    page.get_by_label("Template", exact=True).select_option("promo")
    page.get_by_label("Audience", exact=True).select_option("pros")
    page.get_by_label("Messages per second").fill("1")
    page.get_by_role("button", name="Create broadcast (draft)").click()
    page.wait_for_selector("tr[data-broadcast=spring]")
    page.get_by_role("button", name="Start spring").click()
    page.wait_for_selector("tr[data-broadcast=spring] [data-metric=state]:text('running')")
    page.get_by_role("button", name="Pause spring").click()
    page.wait_for_selector("tr[data-broadcast=spring] [data-metric=state]:text('paused')")
    time.sleep(1.5)
    page.reload()
    status = api(live, "/api/broadcasts/spring")
    assert status["state"] == "paused"
    assert status["recipients"] == 6
    row = page.locator("tr[data-broadcast=spring]")
    assert row.locator("[data-metric=sent]").inner_text() == str(status["counts"].get("sent", 0))
    assert row.locator("[data-metric=progress]").inner_text() == str(status["progress"])
    assert status["progress"] < 1
    audit(page, shots, "messaging")
    page.get_by_role("button", name="Resume spring").click()
    page.wait_for_selector(
        "tr[data-broadcast=spring] [data-metric=state]:text-matches('running|done')"
    )
    page.context.close()
