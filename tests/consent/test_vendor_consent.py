"""Consent from vendors' own events (recorded shapes, real parsers), on both backends:
Braze state changes, CrossEngage/MoEngage events that name only a user (resolved through
profiles, only the event's channel changes), and Braze's email.Unsubscribe link click."""

from __future__ import annotations

from typing import Any

import orjson

from engagehub import registry
from engagehub.consent import store
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.vendors import braze, crossengage, moengage, segment
from tests.cases import CASES
from tests.conftest import make_source

T0 = 1_772_445_600_000
EXAMPLES = CASES / "braze" / "currents" / "http"
EMAIL, PHONE = "ada@example.com", "+14155550100"


def _feed(db: Database, settings: Settings, kind: str, events: list[IncomingEvent]) -> None:
    src, _ = make_source(db, f"{kind}-{len(events)}-{events[0].dedup_key[:8]}", kind)
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, T0, events)])
        run_until_caught_up(conn, registry.processors(settings))


def _identify(db: Database, settings: Settings, user: str = "u-42") -> None:
    body = {
        "batch": [
            {
                "type": "identify",
                "messageId": f"id-{user}",
                "userId": user,
                "timestamp": "2026-03-02T09:00:00Z",
                "traits": {"email": "Ada@Example.com", "phone": "+1 415 555 0100"},
            }
        ]
    }
    parsed = segment.parse_envelope(segment.decode(orjson.dumps(body), "batch"), T0)
    _feed(db, settings, "segment", parsed.events)


def _states(db: Database) -> dict[tuple[str, str, str], str]:
    with db.session() as conn:
        rows = conn.all("SELECT contact, channel, group_name, status FROM subscription_states")
    return {(r["contact"], r["channel"], r["group_name"]): r["status"] for r in rows}


def _crossengage(name: str, channel: str, user: str = "u-42", minute: int = 1) -> IncomingEvent:
    event = {
        "event": name,
        "timestamp": T0 + minute * 60_000,
        "properties": {"channel": channel, "campaign_id": "c-1"},
    }
    body = crossengage.decode(orjson.dumps({"id": user, "events": [event]}))
    (parsed,) = crossengage.parse_body(body).events
    return parsed


def test_crossengage_events_naming_a_user_change_that_channel_only(
    db: Database, settings: Settings
) -> None:
    _identify(db, settings)
    _feed(db, settings, "crossengage", [_crossengage("Message Unsubscribed", "SMS")])
    assert _states(db) == {(PHONE, "sms", ""): "unsubscribed"}
    _feed(db, settings, "crossengage", [_crossengage("Message marked_as_spam", "Email", minute=2)])
    assert _states(db)[(EMAIL, "email", "")] == "unsubscribed"
    with db.session() as conn:
        (row,) = store.history(conn, EMAIL, 10)
    assert row["reason"] == "spam_report"
    _feed(db, settings, "crossengage", [_crossengage("Message hard_bounced", "WhatsApp", minute=3)])
    assert _states(db)[(PHONE, "whatsapp", "")] == "unsubscribed"
    # A user the profiles do not know changes nothing (and fails nothing).
    _feed(db, settings, "crossengage", [_crossengage("Message Unsubscribed", "SMS", "nobody")])
    assert len(_states(db)) == 3


def test_moengage_unsubscribe_with_only_a_uid(db: Database, settings: Settings) -> None:
    _identify(db, settings, "moe-7")
    body = {
        "app_name": "Shop",
        "source": "MOENGAGE",
        "events": [
            {
                "event_name": "Email Unsubscribed",
                "event_code": "MOE_EMAIL_UNSUBSCRIBE",
                "event_uuid": "e-unsub-1",
                "event_time": (T0 + 60_000) // 1000,
                "uid": "moe-7",
                "event_attributes": {"campaign_id": "moe-c"},
            }
        ],
    }
    (event,) = moengage.parse(orjson.dumps(body)).events
    assert event.contact is None
    _feed(db, settings, "moengage", [event])
    assert _states(db) == {(EMAIL, "email", ""): "unsubscribed"}


def _braze(name: str, **changes: Any) -> IncomingEvent:
    record = orjson.loads((EXAMPLES / f"{name}.json").read_bytes())
    record["time"] = T0 // 1000 + 60
    record["id"] = f"{name}-{len(changes)}-{sorted(changes.items())}"
    record["properties"].update(changes)
    (event,) = braze.parse(orjson.dumps({"events": [record]})).events
    return event


def test_braze_state_changes_as_documented(db: Database, settings: Settings) -> None:
    glob = _braze(
        "users.behaviors.subscription.GlobalStateChange", subscription_status="Unsubscribed"
    )
    group = _braze(
        "users.behaviors.subscriptiongroup.StateChange",
        subscription_status="Unsubscribed",
        subscription_group_id="sg-news",
    )
    _feed(db, settings, "braze", [glob, group])
    states = _states(db)
    assert states[("example@braze.com", "email", "")] == "unsubscribed"
    assert states[("example@braze.com", "email", "sg-news")] == "unsubscribed"


def test_braze_inbound_sms_and_whatsapp_actions(db: Database, settings: Settings) -> None:
    sms = _braze(
        "users.messages.sms.InboundReceive", action="Unsubscribed", user_phone_number=PHONE
    )
    wa = _braze(
        "users.messages.whatsapp.InboundReceive", action="Subscribed", user_phone_number=PHONE
    )
    _feed(db, settings, "braze", [sms, wa])
    assert _states(db) == {
        (PHONE, "sms", ""): "unsubscribed",
        (PHONE, "whatsapp", ""): "subscribed",
    }


def test_braze_unsubscribe_link_click_alone_changes_nothing(
    db: Database, settings: Settings
) -> None:
    """Braze reports the state a click led to in GlobalStateChange; the click is analytics."""
    _feed(db, settings, "braze", [_braze("users.messages.email.Unsubscribe")])
    assert _states(db) == {}


def _waiting(db: Database) -> int:
    with db.session() as conn:
        return int(conn.scalar("SELECT COUNT(*) FROM consent_person_requests") or 0)


def test_a_user_only_unsubscribe_before_the_identify_applies_when_the_link_arrives(
    db: Database, settings: Settings
) -> None:
    """The unsubscribe waits; the identify that links the phone applies it at its own time."""
    _feed(db, settings, "crossengage", [_crossengage("Message Unsubscribed", "SMS", minute=5)])
    assert _states(db) == {}
    assert _waiting(db) == 1
    _identify(db, settings)  # 09:00, earlier than the unsubscribe's 09:05: it still applies
    assert _states(db) == {(PHONE, "sms", ""): "unsubscribed"}  # email untouched
    assert _waiting(db) == 0
    with db.session() as conn:
        (row,) = store.history(conn, PHONE, 10)
    assert row["reason"] == "vendor_unsubscribe"
    # A later subscribe of that phone by its own newer event still wins; nothing re-applies.
    later = _crossengage("Message Unsubscribed", "SMS", user="u-43", minute=6)
    _feed(db, settings, "crossengage", [later])
    assert _waiting(db) == 1  # u-43 is unknown: it waits too
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(settings))
    assert _states(db) == {(PHONE, "sms", ""): "unsubscribed"}


def test_a_waiting_request_links_through_an_anonymous_id_merge(
    db: Database, settings: Settings
) -> None:
    """Identified later by an alias from the anonymous id that carried the email."""
    early = {
        "batch": [
            {"type": "identify", "messageId": "anon-1", "anonymousId": "a-9",
             "timestamp": "2026-03-02T08:00:00Z", "traits": {"email": EMAIL}},
        ]
    }  # fmt: skip
    _feed(
        db,
        settings,
        "segment",
        segment.parse_envelope(segment.decode(orjson.dumps(early), "batch"), T0).events,
    )
    _feed(db, settings, "crossengage", [_crossengage("Message marked_as_spam", "Email")])
    assert _waiting(db) == 1
    alias = {"batch": [{"type": "alias", "messageId": "al-1", "userId": "u-42",
                        "previousId": "a-9", "timestamp": "2026-03-02T10:00:00Z"}]}  # fmt: skip
    _feed(
        db,
        settings,
        "segment",
        segment.parse_envelope(segment.decode(orjson.dumps(alias), "batch"), T0).events,
    )
    assert _states(db) == {(EMAIL, "email", ""): "unsubscribed"}
    assert _waiting(db) == 0


def test_push_unsubscribes_of_a_user_reach_their_push_tokens(
    db: Database, settings: Settings
) -> None:
    """Braze registers the token (TokenStateChange); a CrossEngage push unsubscribe names the
    user only; MoEngage's web push unsubscribe carries the token itself (push_id)."""
    record = orjson.loads(
        (EXAMPLES / "users.behaviors.pushnotification.TokenStateChange.json").read_bytes()
    )
    record["user"]["external_user_id"] = "u-42"
    record["properties"]["push_token"] = "tok-ios-1"
    (token,) = braze.parse(orjson.dumps({"events": [record]})).events
    _feed(db, settings, "braze", [token])
    _feed(db, settings, "crossengage", [_crossengage("Message Unsubscribed", "Push", minute=2)])
    assert _states(db) == {("tok-ios-1", "push", ""): "unsubscribed"}
    body = {
        "events": [
            {"event_name": "Unsubscribed from Web Push", "event_uuid": "w-1", "uid": "m-1",
             "event_time": (T0 + 180_000) // 1000, "push_id": "tok-web-9"},
        ]
    }  # fmt: skip
    _feed(db, settings, "moengage", moengage.parse(orjson.dumps(body)).events)
    assert _states(db)[("tok-web-9", "push", "")] == "unsubscribed"


def test_segment_unsubscribed_from_a_list_leaves_the_other_emails(
    db: Database, settings: Settings
) -> None:
    # Segment's Email spec: "Unsubscribed" may name a list; then only that list is left
    body = (CASES / "segment" / "email_spec_examples.json").read_bytes()
    events = segment.parse_envelope(segment.decode(body, "batch"), T0).events
    by_list, everything = (e for e in events if e.vendor_event == "Unsubscribed")
    src, _ = make_source(db, "segment-email-spec", "segment")
    for event in (by_list, everything):
        with db.session() as conn:
            log.append(conn, [log.Batch(src.id, T0, [event])])
            run_until_caught_up(conn, registry.processors(settings))
        if event is by_list:
            assert _states(db) == {("pgibbons@initech.com", "email", "1425"): "unsubscribed"}
    assert _states(db) == {
        ("pgibbons@initech.com", "email", "1425"): "unsubscribed",
        ("pgibbons@initech.com", "email", ""): "unsubscribed",
    }
