"""Segment parsing: recorded payloads, validation, clock skew, dedup keys."""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest

from engagehub.errors import PayloadError
from engagehub.timeutil import parse_ts
from engagehub.vendors import segment
from tests.cases import case_files, check, result_dict

RECEIVED = parse_ts("2026-03-05T00:00:00Z")


@pytest.mark.parametrize("case", case_files("segment"), ids=lambda p: p.stem)
def test_recorded_payloads(case: Path) -> None:
    body = case.read_bytes()
    result = segment.parse_envelope(segment.decode(body, "batch"), RECEIVED)
    check(case, result_dict(result))
    originals = orjson.loads(body)["batch"]
    rejected = {r.index for r in result.rejected}
    kept = [o for i, o in enumerate(originals) if i not in rejected]
    assert [orjson.loads(e.raw) for e in result.events] == kept, "raw is each event verbatim"


def test_clock_skew_is_corrected_with_sent_at() -> None:
    body = {
        "batch": [
            {"type": "track", "event": "X", "userId": "u", "timestamp": "2026-01-01T00:00:00Z"}
        ],
        "sentAt": "2026-01-01T00:00:10Z",
    }
    received = parse_ts("2026-01-01T01:00:00Z")
    (event,) = segment.parse_envelope(segment.decode(orjson.dumps(body), "batch"), received).events
    # timestamp = receivedAt - (sentAt - originalTimestamp): the device clock was 1 h late.
    assert event.event_time == parse_ts("2026-01-01T00:59:50Z")


def test_event_level_sent_at_wins_and_no_sent_at_keeps_timestamp() -> None:
    events = [
        {
            "type": "track",
            "event": "X",
            "userId": "u",
            "messageId": "a",
            "timestamp": "2026-01-01T00:00:00Z",
            "sentAt": "2026-01-01T00:00:01Z",
        },
        {
            "type": "track",
            "event": "X",
            "userId": "u",
            "messageId": "b",
            "timestamp": "2026-01-01T00:00:00Z",
        },
        {"type": "track", "event": "X", "userId": "u", "messageId": "c"},
    ]
    received = parse_ts("2026-01-02T00:00:00Z")
    a, b, c = segment.parse_envelope(
        segment.decode(orjson.dumps({"batch": events}), "batch"), received
    ).events
    assert a.event_time == received - 1000
    assert b.event_time == parse_ts("2026-01-01T00:00:00Z")
    assert c.event_time == received


def test_message_id_is_the_dedup_key_and_hash_otherwise() -> None:
    same = {"type": "track", "event": "X", "userId": "u", "timestamp": "2026-01-01T00:00:00Z"}
    body = orjson.dumps({"batch": [same, same, {**same, "messageId": "m-1"}]})
    first = segment.parse_envelope(segment.decode(body, "batch"), RECEIVED).events
    again = segment.parse_envelope(segment.decode(body, "batch"), RECEIVED + 5000).events
    assert [e.dedup_key for e in first] == [e.dedup_key for e in again], "retries dedupe"
    assert first[0].dedup_key != first[1].dedup_key, "two identical events are two events"
    assert first[2].dedup_key == "m-1"


def test_single_calls_take_their_type_from_the_path() -> None:
    body = orjson.dumps({"userId": "u", "traits": {"plan": "pro"}, "writeKey": "k"})
    envelope = segment.decode(body, "identify")
    assert envelope.writeKey == "k"
    (event,) = segment.parse_envelope(envelope, RECEIVED, "identify").events
    assert event.type == "identify"
    assert event.properties == {"plan": "pro"}


def test_oversized_event_is_rejected_alone() -> None:
    small = {"type": "track", "event": "X", "userId": "u", "messageId": "s"}
    big = {**small, "messageId": "b", "properties": {"blob": "x" * 40_000}}
    result = segment.parse_envelope(
        segment.decode(orjson.dumps({"batch": [small, big]}), "batch"), RECEIVED
    )
    assert [e.dedup_key for e in result.events] == ["s"]
    (rejection,) = result.rejected
    assert rejection.error.code == "payload_too_large"
    assert rejection.ref == "b"
    assert rejection.error.details["limit"] == 32 * 1024


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"batch": "nope"}', "$.batch"),
        (b"[]", "Expected `object`"),
        (b'{"sentAt": 1}', "batch"),
    ],
)
def test_bad_envelopes_name_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as info:
        segment.decode(body, "batch")
    assert fragment in info.value.message + str(info.value.details)


def test_decoder_keeps_each_event_verbatim() -> None:
    raw_event = b'{"type":"track",  "event":"X","userId":"u" }'
    envelope = segment.decode(b'{"batch":[' + raw_event + b"]}", "batch")
    assert bytes(envelope.batch[0]) == raw_event
    assert isinstance(envelope.batch[0], msgspec.Raw)
