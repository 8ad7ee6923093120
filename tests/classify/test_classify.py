"""Machine opens and bot clicks are flagged by the real parsers, with the reason; nothing is
dropped."""

from __future__ import annotations

import orjson

from engagehub.classify import click_reason, open_reason
from engagehub.vendors import braze, sendgrid

T = 1_772_445_600
HUMAN = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"  # noqa: E501


def sg(*items: dict[str, object]) -> list[dict[str, object]]:
    base = {"email": "ada@example.com", "timestamp": T}
    parsed = sendgrid.parse(orjson.dumps([{**base, **i} for i in items]))
    assert not parsed.rejected
    return [e.properties | {"_event": e.event} for e in parsed.events]


def test_sendgrid_opens_vendor_flag_apple_proxy_and_people() -> None:
    vendor, mpp_agent, mpp_net, person = sg(
        {"event": "open", "sg_event_id": "o1", "sg_machine_open": True, "useragent": HUMAN},
        {"event": "open", "sg_event_id": "o2", "useragent": "Mozilla/5.0", "ip": "66.102.0.1"},
        {"event": "open", "sg_event_id": "o3", "useragent": HUMAN, "ip": "17.58.0.12"},
        {"event": "open", "sg_event_id": "o4", "useragent": HUMAN, "ip": "203.0.113.9"},
    )
    assert vendor["_event"] == "Email Machine Opened"
    assert vendor["machine_open_reason"] == "vendor"
    assert (mpp_agent["machine_open"], mpp_agent["machine_open_reason"]) == (True, "apple_mpp")
    assert mpp_net["machine_open_reason"] == "apple_mpp"
    assert mpp_agent["_event"] == "Email Opened"  # kept, flagged: never dropped
    assert "machine_open" not in person


def test_sendgrid_clicks_scanner_agents_and_people() -> None:
    barracuda, preview, person = sg(
        {
            "event": "click",
            "sg_event_id": "c1",
            "url": "https://shop.test/a",
            "useragent": "Barracuda Sentinel (EE)",
        },
        {
            "event": "click",
            "sg_event_id": "c2",
            "url": "https://shop.test/a",
            "useragent": "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        },
        {"event": "click", "sg_event_id": "c3", "url": "https://shop.test/a", "useragent": HUMAN},
    )
    assert (barracuda["bot_click"], barracuda["bot_click_reason"]) == (True, "scanner_user_agent")
    assert preview["bot_click_reason"] == "scanner_user_agent"
    assert "bot_click" not in person


def test_braze_vendor_flags_win_both_ways() -> None:
    click = braze.normalize(
        "users.messages.email.Click",
        {
            "id": "e1",
            "time": T,
            "email_address": "ada@example.com",
            "url": "https://x.test",
            "user_agent": HUMAN,
            "is_suspected_bot_click": True,
            "suspected_bot_click_reason": ["ip_address", "click_timing"],
        },
    )
    assert click.event == "Email Link Clicked"
    assert click.properties["bot_click"] is True
    assert click.properties["bot_click_reason"] == "vendor: ip_address, click_timing"
    cleared = braze.normalize(
        "users.messages.email.Click",
        {
            "id": "e2",
            "time": T,
            "url": "https://x.test",
            "user_agent": "python-requests/2.32.3",
            "is_suspected_bot_click": False,
        },
    )
    assert "bot_click" not in cleared.properties  # Braze looked and said no
    opened = braze.normalize(
        "users.messages.email.Open",
        {"id": "e3", "time": T, "user_agent": "Mozilla/5.0", "machine_open": "true"},
    )
    assert opened.properties["machine_open_reason"] == "vendor"


def test_reasons_on_plain_properties() -> None:
    assert click_reason({"http_method": "HEAD", "user_agent": HUMAN}) == "head_request"
    assert click_reason({"user_agent": "Go-http-client/1.1"}) == "scanner_user_agent"
    assert click_reason({"user_agent": HUMAN, "ip": "not an ip"}) is None
    assert open_reason({"user_agent": "YahooMailProxy; https://help.yahoo.com"}) == (
        "proxy_user_agent"
    )
    assert open_reason({}) is None
