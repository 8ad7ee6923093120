"""The consent processor on both backends: ordering, own-action protection, vendor signals."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from engagehub import registry
from engagehub.consent import store
from engagehub.consent.model import Change
from engagehub.model import IncomingEvent
from engagehub.processing import reset, run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import Database, logread
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from tests.conftest import logged, make_source

T0 = 1_772_445_600_000


def vendor_event(key: str, event: str, t: int, **props: Any) -> IncomingEvent:
    contact = props.get("email") or props.get("phone")
    return logged(key, t, props, event=event, vendor_event=event, contact=contact)


def apply(
    conn: Connection, settings: Settings, source_id: int, events: list[IncomingEvent]
) -> None:
    log.append(conn, [log.Batch(source_id, T0, events)])
    run_until_caught_up(conn, registry.processors(settings))


def api_change(conn: Connection, change: Change, t: int, key: str) -> IncomingEvent:
    return store.change_event(change, t, key)


def test_vendor_signals_apply_and_are_re_emitted(db: Database, settings: Settings) -> None:
    src, _ = make_source(db, "sg", "sendgrid")
    tw, _ = make_source(db, "tw", "twilio")
    with db.session() as conn:
        apply(
            conn,
            settings,
            src.id,
            [
                vendor_event("u1", "Email Unsubscribed", T0, email="Ada@Example.com"),
                vendor_event(
                    "g1",
                    "Email Group Unsubscribed",
                    T0 + 1,
                    email="ada@example.com",
                    subscription_group=10,
                ),
                vendor_event(
                    "b1", "Email Bounced", T0 + 2, email="bob@example.com", bounce_type="hard"
                ),
                vendor_event(
                    "b2", "Email Bounced", T0 + 3, email="carol@example.com", bounce_type="blocked"
                ),
                vendor_event("s1", "Email Marked as Spam", T0 + 4, email="dan@example.com"),
            ],
        )
        apply(
            conn,
            settings,
            tw.id,
            [
                vendor_event(
                    "k1",
                    "SMS Received",
                    T0,
                    phone="+14155550100",
                    keyword="STOP",
                    keyword_action="unsubscribe",
                ),
                vendor_event(
                    "k2",
                    "SMS Received",
                    T0 + 5,
                    phone="+14155550100",
                    keyword="START",
                    keyword_action="subscribe",
                ),
                vendor_event(
                    "k3",
                    "WhatsApp Message Received",
                    T0,
                    phone="+14155550100",
                    keyword="STOP",
                    keyword_action="unsubscribe",
                ),
            ],
        )
        assert store.status(conn, "ada@example.com", "email") == "unsubscribed"
        assert store.status(conn, "ada@example.com", "email", "10") == "unsubscribed"
        assert store.status(conn, "bob@example.com", "email") == "unsubscribed"
        assert store.status(conn, "carol@example.com", "email") == "no_status"
        assert store.status(conn, "dan@example.com", "email") == "unsubscribed"
        assert store.status(conn, "+14155550100", "sms") == "subscribed"
        assert store.status(conn, "+14155550100", "whatsapp") == "unsubscribed"
        history = store.history(conn, "+14155550100")
        assert [(h["channel"], h["status"], h["previous_status"]) for h in history] == [
            ("sms", "subscribed", "unsubscribed"),
            ("whatsapp", "unsubscribed", "no_status"),  # same time as the STOP, later position
            ("sms", "unsubscribed", "no_status"),
        ]
        emitted, _ = logread.query(
            conn,
            logread.EventQuery(limit=100, ascending=True, source_id=store.builtin_source_id(conn)),
        )
    names = [(e.event, e.contact) for e in emitted]
    assert ("Channel Subscription Updated", "ada@example.com") in names
    assert ("Email Unsubscribed", "ada@example.com") in names
    assert ("Group Subscription Updated", "ada@example.com") in names
    assert ("Channel Subscription Updated", "+14155550100") in names
    assert all(e.properties["derived_from"] for e in emitted)


def test_policies_can_be_turned_off(db: Database, database_url: str) -> None:
    settings = Settings(
        database_url=database_url, consent_spam_policy="ignore", consent_bounce_policy="ignore"
    )
    src, _ = make_source(db, "sg", "sendgrid")
    with db.session() as conn:
        apply(
            conn,
            settings,
            src.id,
            [
                vendor_event(
                    "b1", "Email Bounced", T0, email="bob@example.com", bounce_type="hard"
                ),
                vendor_event("s1", "Email Marked as Spam", T0, email="dan@example.com"),
            ],
        )
        assert store.status(conn, "bob@example.com", "email") == "no_status"
        assert store.status(conn, "dan@example.com", "email") == "no_status"


def test_own_unsubscribe_is_not_undone_by_bulk_calls(db: Database, settings: Settings) -> None:
    tw, _ = make_source(db, "tw", "twilio")
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        apply(
            conn,
            settings,
            tw.id,
            [
                vendor_event(
                    "k1", "SMS Received", T0, phone="+14155550100", keyword_action="unsubscribe"
                )
            ],
        )
        bulk = Change("+14155550100", "sms", "subscribed", "", "csv")
        apply(conn, settings, builtin, [api_change(conn, bulk, T0 + 10, "a1")])
        assert store.status(conn, "+14155550100", "sms") == "unsubscribed"
        assert store.history(conn, "+14155550100")[0]["outcome"] == "refused"
        forced = Change("+14155550100", "sms", "subscribed", "", "csv", allow_resubscribe=True)
        apply(conn, settings, builtin, [api_change(conn, forced, T0 + 20, "a2")])
        assert store.status(conn, "+14155550100", "sms") == "subscribed"


def test_late_older_change_never_overwrites_newer(db: Database, settings: Settings) -> None:
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        newer = Change("ada@example.com", "email", "unsubscribed", "", "api")
        older = Change("ada@example.com", "email", "subscribed", "", "api")
        apply(conn, settings, builtin, [api_change(conn, newer, T0 + 100, "n")])
        apply(conn, settings, builtin, [api_change(conn, older, T0, "o")])
        assert store.status(conn, "ada@example.com", "email") == "unsubscribed"
        assert [h["outcome"] for h in store.history(conn, "ada@example.com")] == [
            "applied",
            "superseded",
        ]


def test_identify_messaging_subscriptions(db: Database, settings: Settings) -> None:
    web, _ = make_source(db)
    raw = {
        "type": "identify",
        "userId": "u1",
        "context": {
            "messaging_subscriptions": [
                {"key": "(415) 555-0100", "type": "SMS", "status": "SUBSCRIBED"},
                {
                    "key": "Ada@Example.com",
                    "type": "EMAIL",
                    "status": "UNSUBSCRIBED",
                    "groups": [{"name": "newsletter", "status": "SUBSCRIBED"}],
                },
                {"key": "not-an-email", "type": "EMAIL", "status": "SUBSCRIBED"},
            ]
        },
    }
    event = IncomingEvent(
        dedup_key="i1", event_time=T0, raw=orjson.dumps(raw).decode(), type="identify", user_id="u1"
    )
    with db.session() as conn:
        apply(conn, settings, web.id, [event])
        assert store.status(conn, "+14155550100", "sms") == "subscribed"
        assert store.status(conn, "ada@example.com", "email") == "unsubscribed"
        assert store.status(conn, "ada@example.com", "email", "newsletter") == "subscribed"
        assert store.may_send(conn, "+14155550100", "sms") == (True, "subscribed")
        assert store.may_send(conn, "ada@example.com", "email")[0] is False


CHANGES = [
    ("subscribed", T0 + 1, "api"),
    ("unsubscribed", T0 + 2, "api"),
    ("subscribed", T0 + 3, "api"),
    ("did_not_subscribe", T0 + 3, "api"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_any_arrival_order_ends_in_the_same_state(
    db: Database, settings: Settings, order: tuple[int, ...]
) -> None:
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        for i in order:
            status, t, reason = CHANGES[i]
            apply(
                conn,
                settings,
                builtin,
                [
                    api_change(
                        conn, Change("x@example.com", "email", status, "", reason), t, f"c{i}"
                    )
                ],
            )
        final = store.status(conn, "x@example.com", "email")
        # Equal times: the later log position wins, so the last of the two ties to arrive.
        tie_winner = "did_not_subscribe" if order.index(3) > order.index(2) else "subscribed"
        assert final == tie_winner
        consent = next(p for p in registry.processors(settings) if p.name == "consent")
        reset(conn, consent)
        run_until_caught_up(conn, [consent])
        assert store.status(conn, "x@example.com", "email") == final
