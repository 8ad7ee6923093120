"""Suppression rules on vendors' own payloads, parsed by our real parsers (pure functions)."""

from __future__ import annotations

import itertools

import orjson

from engagehub.model import IncomingEvent, StoredEvent
from engagehub.suppression.rules import DAY_MS, Rule, Signal, code_reason, fold, signals_of
from engagehub.vendors import sendgrid, twilio

T0 = 1_772_445_600_000
_seq = itertools.count(1)


def stored(ev: IncomingEvent, seq: int | None = None) -> StoredEvent:
    """An incoming event as the log would hold it."""
    return StoredEvent(
        seq=seq or next(_seq),
        event_id=f"e{seq}",
        source_id=2,
        dedup_key=ev.dedup_key,
        type=ev.type,
        vendor_event=ev.vendor_event,
        event=ev.event,
        channel=ev.channel,
        user_id=ev.user_id,
        anonymous_id=ev.anonymous_id,
        contact=ev.contact,
        message_id=ev.message_id,
        campaign_id=ev.campaign_id,
        event_time=ev.event_time,
        received_at=ev.event_time,
        properties=ev.properties,
        raw=ev.raw,
    )


def sendgrid_events(*items: dict[str, object]) -> list[StoredEvent]:
    parsed = sendgrid.parse(orjson.dumps(list(items)))
    return [stored(e) for e in parsed.events]


def test_sendgrid_bounce_kinds_and_spam_report() -> None:
    base = {"email": "Ada@Example.com", "timestamp": T0 // 1000}
    evs = sendgrid_events(
        {**base, "event": "bounce", "sg_event_id": "b1", "type": "bounce", "reason": "550 5.1.1"},
        {**base, "event": "bounce", "sg_event_id": "b2", "type": "blocked", "reason": "421"},
        {**base, "event": "spamreport", "sg_event_id": "s1"},
        {**base, "event": "delivered", "sg_event_id": "d1"},
        {**base, "event": "open", "sg_event_id": "o1"},
    )
    got = [s for ev in evs for s in signals_of(ev, "US")]
    assert [(s.contact, s.kind, s.reason) for s in got] == [
        ("ada@example.com", "suppress", "hard_bounce"),
        ("ada@example.com", "soft", "soft_bounce"),
        ("ada@example.com", "suppress", "spam_complaint"),
        ("ada@example.com", "delivered", ""),
    ]
    assert got[0].detail == "550 5.1.1"


def test_twilio_error_codes_suppress_only_when_listed() -> None:
    def status(code: str) -> list[Signal]:
        params = {
            "MessageSid": f"SM{code}",
            "MessageStatus": "undelivered",
            "To": "+14155550100",
            "From": "+14155550199",
            "ErrorCode": code,
        }
        return list(signals_of(stored(twilio.parse_status(params, T0)), "US"))

    for code, reason in [
        ("21211", "invalid_number"),
        ("21614", "invalid_number"),
        ("30003", "unreachable"),
        ("30005", "unreachable"),
        ("30006", "unreachable"),
        ("30007", "carrier_violation"),
    ]:
        [sig] = status(code)
        assert (sig.contact, sig.channel, sig.reason) == ("+14155550100", "sms", reason)
        assert sig.detail.startswith(code)
    assert status("30001") == []  # queue overflow: the sender's problem, not the number's
    assert status("30008") == []
    assert code_reason("not a code") is None


def test_recorded_whatsapp_window_error_does_not_suppress() -> None:
    """63016 (outside the 24-hour window) says nothing about the number."""
    params = {
        "MessageSid": "SM2a",
        "MessageStatus": "undelivered",
        "To": "whatsapp:+447700900123",
        "ErrorCode": "63016",
    }
    assert list(signals_of(stored(twilio.parse_status(params, T0)), "US")) == []


def sig(kind: str, t: int, seq: int, reason: str = "") -> Signal:
    return Signal("a@x.test", "email", kind, T0 + t, seq, reason)


def test_out_of_order_bounce_after_later_delivery_does_not_suppress() -> None:
    rule = Rule()
    bounce, delivered = sig("suppress", 10, 2, "hard_bounce"), sig("delivered", 20, 1)
    for order in ([bounce, delivered], [delivered, bounce]):
        assert fold(order, rule) is None
    later = sig("suppress", 30, 3, "hard_bounce")
    state = fold([later, delivered, bounce], rule)
    assert state is not None
    assert state.seq == 3


def test_spam_complaint_and_manual_entries_survive_deliveries() -> None:
    rule = Rule()
    for reason in ("spam_complaint", "manual", "carrier_violation"):
        state = fold([sig("suppress", 10, 1, reason), sig("delivered", 20, 2)], rule)
        assert state is not None
        assert state.reason == reason
    assert fold([sig("suppress", 10, 1, "manual"), sig("lift", 20, 2)], rule) is None
    # a removal older than the entry does not lift it
    assert fold([sig("lift", 5, 2), sig("suppress", 10, 1, "manual")], rule) is not None


def test_soft_bounce_rule_n_in_d_days_for_t_days() -> None:
    rule = Rule(count=3, days=7, suppress_days=14)
    day = DAY_MS
    softs = [sig("soft", i * day, i + 1, "soft_bounce") for i in range(3)]
    state = fold(softs, rule)
    assert state is not None
    assert state.reason == "soft_bounce"
    assert state.expires_at == softs[-1].event_time + 14 * day
    assert "3 soft bounces within 7 days" in state.detail
    # spread over more than D days: no suppression
    spread = [sig("soft", i * 4 * day, i + 1, "soft_bounce") for i in range(3)]
    assert fold(spread, rule) is None
    # a delivery between resets the count, whatever order the events came in
    between = [*softs[:2], sig("delivered", day + 1, 9), softs[2]]
    assert fold(reversed(between), rule) is None
    # a hard bounce is not replaced by a later soft-bounce suppression
    hard = sig("suppress", -1, 99, "hard_bounce")
    state = fold([hard, *softs], rule)
    assert state is not None
    assert state.reason == "hard_bounce"
    assert state.expires_at is None
