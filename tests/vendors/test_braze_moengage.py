"""Braze Currents (HTTP connector records, Avro partitions) and MoEngage Streams parsing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engagehub.errors import PayloadError
from engagehub.vendors import braze, moengage
from tests.cases import CASES, check, result_dict


def test_braze_http_connector_batch() -> None:
    case = CASES / "braze" / "http_connector_batch.json"
    result = braze.parse(case.read_bytes())
    check(case, result_dict(result))
    send, opened, inbound, sub, conv = result.events
    assert send.message_id == opened.message_id == "disp-9:user-42"
    assert send.contact == "ada@example.com"
    assert send.properties["variation_id"] == "var-a"
    assert inbound.properties["keyword_action"] == "unsubscribe"
    assert inbound.contact == "+14155550100"
    assert sub.event == "Group Subscription Updated"
    assert sub.properties["subscription_status"] == "unsubscribed"
    assert conv.event == "Journey Converted"
    assert conv.campaign_id == "canvas-7"
    assert [r.index for r in result.rejected] == [5, 6]


def test_braze_partitions(tmp_path: Path) -> None:
    base = tmp_path / "currents" / "event_type=users.messages.email.Open"
    (base / "date=2026-03-01-10").mkdir(parents=True)
    (base / "date=2026-03-02-10").mkdir(parents=True)
    for d in ("date=2026-03-01-10", "date=2026-03-02-10"):
        (base / d / "part-0.avro").write_bytes(b"")
    found = list(braze.avro_files(tmp_path / "currents", since="2026-03-02-00"))
    assert [(p.parent.name, t) for p, t in found] == [
        ("date=2026-03-02-10", "users.messages.email.Open")
    ]
    stray = tmp_path / "stray.avro"
    stray.write_bytes(b"")
    with pytest.raises(PayloadError):
        list(braze.avro_files(stray))


def test_moengage_streams_batch() -> None:
    case = CASES / "moengage" / "streams_batch.json"
    result = moengage.parse(case.read_bytes())
    check(case, result_dict(result))
    names = [(e.vendor_event, e.event) for e in result.events]
    assert names[:5] == [
        ("Email Sent", "Email Sent"),
        ("Email Clicked", "Email Link Clicked"),
        ("Notification Received Android", "Push Delivered"),
        ("SMS Sent", "SMS Sent"),
        ("User Exited Flow", "Journey Exited"),
    ]
    assert result.events[1].properties["url"] == "https://shop.example.com/x"
    assert result.events[2].properties["platform"] == "android"
    assert result.events[3].contact == "+14155550123"
    assert result.events[4].properties["exit_reason"] == "goal met"
    assert result.events[5].event is None
    assert result.events[0].message_id == "c-55:moe-1"
    assert [r.index for r in result.rejected] == [6, 7]


def test_moengage_streams_documented_request() -> None:
    """MoEngage's own Streams example (moengage-streams.mdx, "API Request Format"), verbatim."""
    case = CASES / "moengage" / "streams_docs_example.json"
    result = moengage.parse(case.read_bytes())
    check(case, result_dict(result))
    (ev,) = result.events
    assert (ev.event, ev.channel, ev.campaign_id) == ("Push Delivered", "push", "353df897hkbh67658")
    assert ev.properties["push_token"] == "recipient device’s push token"
    assert ev.properties["channel"] == "Push"  # campaign_channel, MoEngage's spelling
    assert ev.event_time == 1_580_967_474_000


def test_moengage_event_codes_resolve_unknown_display_names() -> None:
    """A display name renamed in the dashboard still maps through its event code; a custom
    event stays custom whatever its code."""
    body = orjson.dumps(
        {
            "events": [
                {"event_name": "Mail geöffnet", "event_code": "MOE_EMAIL_OPEN",
                 "event_uuid": "u1", "event_time": 1580967474, "uid": "m1"},
                {"event_name": "Custom Event", "event_code": "MOE_EMAIL_OPEN",
                 "event_uuid": "u2", "event_time": 1580967474, "uid": "m1"},
                {"event_name": "Bill Paid", "event_code": "Bill Paid",
                 "event_uuid": "u3", "event_time": 1580967474, "uid": "m1"},
            ]
        }
    )  # fmt: skip
    events = moengage.parse(body).events
    assert [(e.vendor_event, e.event) for e in events] == [
        ("Mail geöffnet", "Email Opened"),
        ("Custom Event", None),
        ("Bill Paid", None),
    ]
