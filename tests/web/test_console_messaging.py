"""The Messaging page in Chromium: write a template with a live preview from a test profile
(updated while typing; merge-tag errors inline), save, test-send to a local SMTP server, create,
start and pause a broadcast, schedule one, add, edit and delete a conversion goal; SMS previews
count segments; lists filter and page. Numbers equal the API's."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.live import LiveServer
from tests.messaging.conftest import Sink, running_sink
from tests.waiting import eventually
from tests.web.console import api, audit, browser, keyboard_reaches, signed_in, start_server

__all__ = ["browser"]
PEOPLE = ["ada", "bo", "cy", "di", "ed", "fay"]


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with running_sink() as found:
        yield found


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


def new_broadcast(page: Page, live: LiveServer, name: str, field: tuple[str, str]) -> None:
    """The Messaging page's "Create broadcast" form: promo to the pros, one more field set."""
    page.goto(live.url + "/messaging")
    page.get_by_label("Broadcast name").fill(name)
    page.get_by_label("Template", exact=True).select_option("promo")
    page.get_by_label("Audience", exact=True).select_option("pros")
    page.get_by_label(field[0]).fill(field[1])
    page.get_by_role("button", name="Create broadcast").click()


def test_template_editor_test_send_and_broadcast(
    live: LiveServer, browser: Browser, sink: Sink, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    people(live)
    eventually(
        lambda: api(live, "/api/audiences/pros")["size"] >= len(PEOPLE),
        timeout=20,
        interval=0.2,
        what="profiles and consent settling",
    )
    page = signed_in(browser, live)
    page.goto(live.url + "/messaging")
    assert page.locator("tr[data-audience=pros] [data-metric=size]").inner_text() == "6"
    audit(page, shots, "messaging-empty")

    # A new email template, previewed with Ada's traits while typing (no button pressed): the
    # unknown tag is named inline, and the preview follows each change.
    page.get_by_label("New template named").fill("promo")
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Test profile", exact=False).fill("ada@example.com")
    page.get_by_label("Subject (Liquid)").fill("Hi {{ profile.first_name }}{{ profile.nickname }}")
    page.get_by_label("Text body (Liquid)").fill("Deals for {{ profile.plan }} members")
    expect(page.locator("#preview-text")).to_contain_text("Deals for pro members")
    assert page.locator("#preview-subject").inner_text() == "Hi Ada"
    assert "profile.nickname" in page.locator("#missing").inner_text()
    assert page.url.endswith("/messaging/templates/promo?channel=email")  # no page load
    page.get_by_label("Text body (Liquid)").fill("Deals for {{ profile.plan | upcase }}")
    expect(page.locator("#preview-text")).to_contain_text("Deals for PRO")
    page.get_by_label("Text body (Liquid)").fill("Deals {% if %}")
    expect(page.locator("#editor-error")).to_contain_text("invalid Liquid in text")
    page.get_by_label("Text body (Liquid)").fill("Deals for {{ profile.plan }} members")
    expect(page.locator("#editor-error")).to_have_count(0)
    # The Preview button does the same with a page load (for browsers without JavaScript).
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/messaging/templates/promo/preview")
    assert page.locator("#preview-subject").inner_text() == "Hi Ada"
    assert "Deals for pro members" in page.locator("#preview-text").inner_text()
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

    # A journey following the audience: whoever a broadcast enters waits there 3 days.
    follow_up = {
        "name": "follow-up",
        "channel": "email",
        "trigger": {"audience": "pros"},
        "steps": [{"wait": "3d"}, {"send": "promo"}],
    }
    api(live, "/api/journeys", "POST", json=follow_up)

    # A broadcast: created as a draft, started (confirmed), paused; numbers as the API's.
    new_broadcast(page, live, "spring", ("Messages per second", "1"))
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
    eventually(  # the journeys processor enters everyone of the audience
        lambda: len(api(live, "/api/journeys/follow-up")["people"]) >= len(PEOPLE),
        timeout=20,
        interval=0.2,
        what="the journey entering the audience",
    )
    page.reload()
    journey = api(live, "/api/journeys/follow-up")
    row = page.locator("tr[data-journey=follow-up]")
    assert row.locator("[data-state=active]").inner_text() == f"active: {journey['runs']['active']}"
    at_step = Counter(p["step"] + 1 for p in journey["people"] if p["state"] == "active")
    assert sum(at_step.values()) == len(PEOPLE), journey["people"]
    for step, n in at_step.items():
        assert row.locator(f"[data-step='{step}']").inner_text() == f"step {step}: {n}"
    audit(page, shots, "messaging")
    page.get_by_role("button", name="Resume spring").click()
    page.wait_for_selector(
        "tr[data-broadcast=spring] [data-metric=state]:text-matches('running|done')"
    )

    # Scheduling: created to start far ahead, then moved to a time already past (confirmed):
    # the messaging service starts it by itself.
    new_broadcast(page, live, "autumn", ("Start by itself at", "2999-01-01T09:00"))
    page.wait_for_selector("[role=status]")
    assert (
        "autumn created for 2999-01-01T09:00:00.000Z" in page.locator("[role=status]").inner_text()
    )
    row = page.locator("tr[data-broadcast=autumn]")
    assert row.locator("[data-metric=state]").inner_text() == "scheduled"
    scheduled = api(live, "/api/broadcasts/autumn")
    assert (scheduled["state"], scheduled["scheduled_at"]) == (
        "scheduled",
        "2999-01-01T09:00:00.000Z",
    )
    assert row.locator("[data-metric=scheduled_at]").inner_text() == scheduled["scheduled_at"]
    row.get_by_label("Start autumn at (UTC)").fill("2000-01-01T00:00")
    row.get_by_role("button", name="Schedule autumn", exact=True).click()
    eventually(
        lambda: api(live, "/api/broadcasts/autumn")["state"] != "scheduled",
        timeout=20,
        interval=0.2,
        what="the scheduled broadcast starting",
    )
    page.goto(live.url + "/messaging")
    started = api(live, "/api/broadcasts/autumn")
    assert started["recipients"] == len(PEOPLE)
    assert started["started_at"] is not None
    row = page.locator("tr[data-broadcast=autumn]")
    assert row.locator("[data-metric=state]").inner_text() in ("running", "done")

    # Goals: add, edit (same id, new window), delete (confirmed); the API agrees each time.
    page.get_by_label("Campaign id").last.fill("spring")
    page.get_by_label("Goal event", exact=False).last.fill("Order Completed")
    page.get_by_role("button", name="Add goal").click()
    page.wait_for_selector("[role=status]")
    [goal] = api(live, "/api/goals")["goals"]
    row = page.locator(f"tr[data-goal='{goal['id']}']")
    assert row.locator("[data-metric=within]").inner_text() == goal["within"] == "72h"
    row.get_by_text(f"Edit goal {goal['id']}").click()
    row.get_by_label("Within", exact=False).fill("48h")
    row.get_by_label("Only when", exact=False).fill("properties.total > 20")
    row.get_by_role("button", name=f"Save goal {goal['id']}").click()
    page.wait_for_selector("[role=status]")
    assert f"goal {goal['id']} saved" in page.locator("[role=status]").inner_text()
    [edited] = api(live, "/api/goals")["goals"]
    assert (edited["id"], edited["within"], edited["where"]) == (
        goal["id"],
        "48h",
        "properties.total > 20",
    )
    row = page.locator(f"tr[data-goal='{goal['id']}']")
    assert row.locator("[data-metric=within]").inner_text() == "48h"
    row.get_by_text(f"Edit goal {goal['id']}").click()
    row.get_by_label("Only when", exact=False).fill("properties.total = 20")
    row.get_by_role("button", name=f"Save goal {goal['id']}").click()
    # The error is shown on the page the form came from, naming the bad token.
    page.wait_for_url("**/messaging?error=*#goals")
    assert "invalid where expression" in page.locator("#alert").inner_text()
    assert "'='" in page.locator("#alert").inner_text()
    assert api(live, "/api/goals")["goals"] == [edited]  # a bad edit changes nothing
    audit(page, shots, "messaging-goals")
    eventually(  # the page reloads itself while a broadcast runs
        lambda: all(b["state"] != "running" for b in api(live, "/api/broadcasts")["broadcasts"]),
        timeout=60,
        interval=0.5,
        what="the broadcasts finishing",
    )
    page.goto(live.url + "/messaging#goals")
    assert keyboard_reaches(page) > 20
    page.get_by_role("button", name=f"Delete goal {goal['id']}").click()
    page.wait_for_selector("[role=status]")
    assert api(live, "/api/goals")["goals"] == []
    page.context.close()


def test_lists_filter_and_page(live: LiveServer, browser: Browser, tmp_path: Path) -> None:
    for i in range(30):
        api(
            live,
            "/api/templates",
            "POST",
            json={"name": f"t{i:02d}", "channel": "sms", "body": "x"},
        )
    names = sorted(t["name"] for t in api(live, "/api/templates")["templates"])
    page = signed_in(browser, live)
    page.goto(live.url + "/messaging")
    shown = page.locator("#templates tbody tr[data-template]")
    assert shown.count() == 25
    pager = page.locator("nav[data-list=templates] [data-metric=shown]")
    assert pager.inner_text() == f"1–25 of {len(names)}"
    page.get_by_role("link", name="Next templates").click()
    assert page.locator("nav[data-list=templates] [data-metric=shown]").inner_text() == (
        f"26–{len(names)} of {len(names)}"
    )
    second = [shown.nth(i).get_attribute("data-template") for i in range(shown.count())]
    assert second == names[25:]
    page.get_by_role("searchbox", name="Filter templates").fill("T1")
    page.get_by_role("button", name="Filter templates").click()
    filtered = [shown.nth(i).get_attribute("data-template") for i in range(shown.count())]
    assert filtered == [n for n in names if "t1" in n.lower()]
    assert "matching “T1”" in pager.inner_text()
    audit(page, tmp_path / "screenshots", "messaging-filtered")
    page.get_by_role("link", name="Show all templates").click()
    assert shown.count() == 25
    page.context.close()


def test_the_editor_works_without_javascript(live: LiveServer, browser: Browser) -> None:
    """Scripts off: the Preview button renders the draft, Save stores it, a broadcast is
    scheduled from its row; the page never calls the preview route on its own."""
    page = signed_in(browser, live, javascript=False)
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if r.url.endswith("/preview") else None)
    page.goto(live.url + "/messaging/templates/nojs?channel=sms")
    page.get_by_label("SMS body (Liquid)").fill("Hello {{ profile.first_name | default: 'you' }}")
    assert calls == []  # typing alone does nothing without scripts
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#preview-body").inner_text().startswith("Hello you")
    assert len(calls) == 1
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("[role=status]")
    assert api(live, "/api/templates/nojs")["body"].startswith("Hello")
    api(live, "/api/audiences", "POST", json={"name": "phones", "channel": "sms"})
    page.goto(live.url + "/messaging")
    page.get_by_label("Broadcast name").fill("quiet")
    page.get_by_label("Template", exact=True).select_option("nojs")
    page.get_by_label("Audience", exact=True).select_option("phones")
    page.get_by_role("button", name="Create broadcast").click()
    row = page.locator("tr[data-broadcast=quiet]")
    row.get_by_label("Start quiet at (UTC)").fill("2999-06-01T12:30")
    row.get_by_role("button", name="Schedule quiet", exact=True).click()
    assert (
        "quiet scheduled for 2999-06-01T12:30:00.000Z" in page.locator("[role=status]").inner_text()
    )
    assert api(live, "/api/broadcasts/quiet")["state"] == "scheduled"
    page.locator("tr[data-broadcast=quiet]").get_by_role("button", name="Unschedule quiet").click()
    assert api(live, "/api/broadcasts/quiet")["state"] == "draft"
    page.context.close()
