"""Webhook and Segment delivery against a real HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from standardwebhooks.webhooks import Webhook

from engagehub.destinations import store
from engagehub.destinations.service import DeliveryService
from engagehub.settings import Settings
from engagehub.storage import Database
from tests.destinations.conftest import add_events
from tests.destinations.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def add(db: Database, url: str, name: str = "hook", **kwargs: object) -> store.Destination:
    with db.session() as conn:
        return store.create(conn, name, kwargs.pop("kind", "webhook"), url, **kwargs)  # type: ignore[arg-type]


def drain(settings: Settings, db: Database) -> None:
    service = DeliveryService(settings)
    try:
        service.drain(db)
    finally:
        service.close()


def status(db: Database, name: str = "hook") -> store.Destination:
    with db.session() as conn:
        return store.get(conn, name)


def ids(rec: Receiver) -> list[int]:
    return [e["seq"] for body in rec.bodies() for e in body["events"]]


def test_batches_are_signed_ordered_and_complete(
    settings: Settings, db: Database, hook: Receiver
) -> None:
    add(db, hook.url, secret=SECRET, batch_size=4, start=0)
    add_events(db, 10)
    drain(settings, db)
    assert [len(b["events"]) for b in hook.bodies()] == [4, 4, 2]
    assert ids(hook) == list(range(1, 11))  # log order, so per-user order holds too
    verifier = Webhook(SECRET)
    for req in hook.received:
        verified = verifier.verify(req.body, req.headers)  # independent implementation
        assert verified["batch_id"] == req.headers["webhook-id"]
    assert len({r.headers["webhook-id"] for r in hook.received}) == 3
    forged = dict(hook.received[0].headers, **{"webhook-signature": "v1,AAAA"})
    with pytest.raises(Exception, match="signature"):
        verifier.verify(hook.received[0].body, forged)
    dest = status(db)
    assert (dest.cursor, dest.delivered, dest.failures) == (10, 10, 0)


def test_event_filter_and_plain_text_secret(
    settings: Settings, db: Database, hook: Receiver
) -> None:
    add(db, hook.url, secret="plain secret", events="Email *", start=0)
    add_events(db, 8)
    drain(settings, db)
    events = [e["event"] for b in hook.bodies() for e in b["events"]]
    assert all(e.startswith("Email ") for e in events)
    assert len(events) == 4
    key = base64.b64encode(b"plain secret").decode()
    Webhook(key).verify(hook.received[0].body, hook.received[0].headers)


def test_starts_at_the_log_head_by_default(
    settings: Settings, db: Database, hook: Receiver
) -> None:
    add_events(db, 5)
    add(db, hook.url, secret=SECRET)
    add_events(db, 2, start=5)
    drain(settings, db)
    assert ids(hook) == [6, 7]


@pytest.mark.parametrize("fault", ["status500", "timeout", "garbage", "hangup"])
def test_transient_faults_retry_the_same_batch(
    settings: Settings, db: Database, hook: Receiver, fault: str
) -> None:
    script = {
        "status500": ("status", 500),
        "timeout": ("sleep", 0.8),  # longer than the 0.5 s timeout
        "garbage": "garbage",
        "hangup": "hangup",
    }
    hook.script.append(script[fault])
    add(db, hook.url, secret=SECRET, start=0)
    add_events(db, 3)
    drain(settings, db)
    if fault == "timeout":  # the receiver saw the slow attempt too: at-least-once
        assert len(hook.received) == 2
        assert hook.received[0].body == hook.received[1].body
    else:
        assert len(hook.received) == 1
    assert ids(hook)[-3:] == [1, 2, 3]
    dest = status(db)
    assert (dest.cursor, dest.failures, dest.dead) == (3, 1, 0)
    assert dest.last_error


def test_retry_keeps_the_idempotency_id(settings: Settings, db: Database, hook: Receiver) -> None:
    hook.script.append(("sleep", 0.8))
    add(db, hook.url, secret=SECRET, start=0)
    add_events(db, 2)
    drain(settings, db)
    first, second = hook.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_429_honours_retry_after(settings: Settings, db: Database, hook: Receiver) -> None:
    hook.script.append(("status", 429))
    add(db, hook.url, secret=SECRET, start=0)
    add_events(db, 2)
    before = time.time() * 1000
    drain(settings, db)
    after = time.time() * 1000
    # the 429 was answered between before and after: 30 s from then, however slow the machine
    dest = status(db)
    assert hook.received == []
    assert dest.inflight_upto == 2
    assert dest.cursor == 0
    assert before + 29_000 <= dest.next_attempt_at <= after + 31_000
    assert "429" in (dest.last_error or "")


def test_4xx_dead_letters_and_replay(settings: Settings, db: Database, hook: Receiver) -> None:
    hook.script.append(("status", 422))
    add(db, hook.url, secret=SECRET, batch_size=2, start=0)
    add_events(db, 4)
    drain(settings, db)
    assert ids(hook) == [3, 4]  # the refused batch does not block the next one
    with db.session() as conn:
        letters = store.dead_letters(conn, "hook")
    assert [(x["after_seq"], x["upto_seq"], x["status"]) for x in letters] == [(0, 2, "dead")]
    assert "422" in letters[0]["error"]
    with db.session() as conn:
        assert store.replay(conn, "hook", dead_letters_only=True)["dead_letters"] == 1
    drain(settings, db)
    assert ids(hook) == [3, 4, 1, 2]
    assert hook.received[-1].headers["webhook-id"] == letters[0]["batch_id"]
    with db.session() as conn:
        assert store.dead_letters(conn, "hook", "dead") == []


def test_retries_exhausted_go_to_dead_letters(
    settings: Settings, db: Database, hook: Receiver
) -> None:
    hook.script.extend([("status", 503)] * 3)
    add(db, hook.url, secret=SECRET, start=0)
    add_events(db, 2)
    drain(settings, db)
    dest = status(db)
    assert (dest.cursor, dest.dead, dest.failures) == (2, 2, 3)
    assert "gave up after 3 attempts" in (dest.last_error or "")


def test_replay_from_time_rewinds(settings: Settings, db: Database, hook: Receiver) -> None:
    add(db, hook.url, secret=SECRET, start=0)
    add_events(db, 3)
    drain(settings, db)
    with db.session() as conn:
        out = store.replay(conn, "hook", from_ms=store.parse_from("2025-11-24T16:00:00Z"))
    assert out["cursor"] == 0
    drain(settings, db)
    assert ids(hook) == [1, 2, 3, 1, 2, 3]


def test_outbox_survives_restart(settings: Settings, db: Database, hook: Receiver) -> None:
    hook.script.append(("status", 500))
    add(db, hook.url, secret=SECRET, start=0)
    add_events(db, 2)
    service = DeliveryService(settings)
    service.run_once(db)
    service.close()  # "restart": a new service picks up the in-flight batch from storage
    assert status(db).inflight_upto == 2
    drain(settings, db)
    assert ids(hook) == [1, 2]


def test_slow_destination_does_not_block_others(
    settings: Settings, db: Database, hook: Receiver
) -> None:
    """The slow destination's request is held unanswered until the fast one has all three of
    its batches: were deliveries serial, fast could never finish (no timing involved)."""
    from tests.destinations.receiver import receiver

    release = threading.Event()
    with receiver() as slow:
        slow.script.append(("hold", release))
        add(db, slow.url, name="slow", secret=SECRET, start=0)
        add(db, hook.url, name="fast", secret=SECRET, batch_size=1, start=0)
        add_events(db, 3)
        service = DeliveryService(settings.model_copy(update={"destination_timeout_seconds": 60}))
        try:
            started = time.monotonic()
            while len(hook.received) < 3:
                service.run_once(db)
                assert time.monotonic() - started < 20, "fast waited for the held slow request"
            # the slow batch is still unanswered while fast got all three of its batches
            assert len(slow.received) == 1
            assert status(db, "slow").cursor == 0
            release.set()
            service.drain(db)
        finally:
            release.set()
            service.close()
        assert ids(slow) == [1, 2, 3]


def test_segment_kind_sends_track_calls(settings: Settings, db: Database, hook: Receiver) -> None:
    add(db, hook.url.replace("/hook", ""), name="seg", kind="segment", secret="wk_123", start=0)
    add_events(db, 3)
    drain(settings, db)
    (req,) = hook.received
    assert req.path == "/v1/batch"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"wk_123:").decode()
    calls = req.json()["batch"]
    assert [c["type"] for c in calls] == ["track"] * 3
    assert [c["event"] for c in calls] == ["Email Delivered", "Email Opened", "SMS Delivered"]
    assert calls[0]["userId"] == "u0"
    assert calls[0]["properties"]["n"] == 0
    assert len({c["messageId"] for c in calls}) == 3
