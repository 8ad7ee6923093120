"""The log's last checks: every field, every depth, once per event on the ingest path."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from engagehub import safejson
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent, ParseResult
from engagehub.storage import events as log
from engagehub.storage.sanity import TEXT_FIELDS, problem, screen

GOOD = IncomingEvent(
    dedup_key="k1",
    event_time=1_700_000_000_000,
    raw='{"a": [1, {"b": 2}]}',
    vendor_event="opened",
    event="Email Opened",
    channel="email",
    user_id="u1",
    contact="a@example.com",
    message_id="m1",
    campaign_id="c1",
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("name", TEXT_FIELDS)
def test_a_nul_character_is_refused_naming_its_own_field(name: str) -> None:
    """Each text field is checked, and the error names the field that holds the NUL (the
    other fields hold text too, so the wrong one would be easy to name)."""
    event = dataclasses.replace(GOOD, **{name: "x\x00y"})
    error = problem(event)
    assert error is not None
    assert error.details["field"] == name
    assert name in str(error)


def test_a_clean_event_passes() -> None:
    assert problem(GOOD) is None
    assert problem(GOOD, from_raw=True) is None


@pytest.mark.parametrize("name", TEXT_FIELDS)
def test_from_raw_events_are_scanned_when_raw_holds_a_nul(name: str) -> None:
    """A parser's texts decoded from ``raw`` can hold a NUL only when ``raw`` does (as JSON's
    escape or, for any other text, the character): then every field is scanned and named."""
    escaped = dataclasses.replace(GOOD, **{"raw": '{"v": "x\\u0000y"}', name: "x\x00y"})
    error = problem(escaped, from_raw=True)
    assert error is not None
    assert error.details["field"] == name
    plain = dataclasses.replace(GOOD, **{name: "x\x00y"})
    if name == "raw":
        assert problem(plain, from_raw=True) is not None
    else:  # raw is clean: the shortcut trusts the parser (only a from_raw parser says so)
        assert problem(plain, from_raw=True) is None
        assert problem(plain) is not None


def test_from_raw_leaves_the_depth_to_the_parser_and_checks_times() -> None:
    deep = dataclasses.replace(GOOD, raw=_nested(safejson.MAX_DEPTH + 1))
    assert problem(deep) is not None
    assert problem(deep, from_raw=True) is None  # Segment refused it before decoding
    late = dataclasses.replace(GOOD, event_time=10**15)
    late_error = problem(late, from_raw=True)
    assert late_error is not None
    assert late_error.details["field"] == "event_time"


def test_segment_results_are_from_raw_and_keep_it_through_the_screen() -> None:
    from engagehub.vendors import segment

    body = orjson.dumps(
        {
            "batch": [
                {"type": "track", "event": "X", "userId": "a\u0000b", "messageId": "m"},
                {"type": "track", "event": "X", "userId": "u", "messageId": "n"},
            ]
        }
    )
    parsed = segment.parse_envelope(segment.decode(body, "batch"), 1_700_000_000_000)
    assert parsed.from_raw
    result = screen(parsed)
    assert result.from_raw
    assert [(r.index, r.error.details["field"]) for r in result.rejected] == [(0, "user_id")]
    assert [e.dedup_key for e in result.events] == ["n"]


@pytest.mark.parametrize("kind", [str, bytes])
def test_depth_is_counted_the_same_for_text_and_bytes(kind: type) -> None:
    """Many brackets side by side are shallow; one level past the limit is refused."""

    def as_kind(text: str) -> str | bytes:
        return text if kind is str else text.encode()

    limit = safejson.MAX_DEPTH
    wide = "[" + ",".join(["[]"] * (3 * limit)) + "]"
    assert not safejson.text_too_deep(as_kind(wide), limit)
    assert not safejson.text_too_deep(as_kind(_nested(limit)), limit)
    assert safejson.text_too_deep(as_kind(_nested(limit + 1)), limit)
    assert safejson.text_too_deep(as_kind('{"a": "\u00e9", "b": ' + _nested(limit) + "}"), limit)


def test_too_deep_raw_and_out_of_range_times_are_refused() -> None:
    deep = dataclasses.replace(GOOD, raw=_nested(safejson.MAX_DEPTH + 1))
    late = dataclasses.replace(GOOD, event_time=10**15)
    deep_error = problem(deep)
    late_error = problem(late)
    assert deep_error is not None
    assert deep_error.details["limit"] == safejson.MAX_DEPTH
    assert late_error is not None
    assert late_error.details["field"] == "event_time"


def test_screen_keeps_request_indexes_of_the_refused() -> None:
    bad = dataclasses.replace(GOOD, dedup_key="k2", user_id="a\x00")
    result = screen(ParseResult([GOOD, bad, dataclasses.replace(GOOD, dedup_key="k3")]))
    assert [e.dedup_key for e in result.events] == ["k1", "k3"]
    assert [(r.index, r.error.details["field"]) for r in result.rejected] == [(1, "user_id")]


def test_prepare_checks_every_batch_the_routes_did_not_screen() -> None:
    """An append from anywhere but an ingest route (CLI, services) is checked by the writer;
    a batch the route screened is not scanned a second time."""
    bad = dataclasses.replace(GOOD, contact="a\x00@example.com")
    with pytest.raises(PayloadError, match="contact contains a NUL"):
        log.prepare([log.Batch(1, 1, [GOOD, bad])])
    (rows,) = log.prepare([log.Batch(1, 1, [GOOD], screened=True)])
    assert rows[0][2] == "k1"
    assert orjson.loads(rows[0][14]) == {}
