"""Every vendor parser, fed arbitrary bytes, arbitrary JSON and mutated recorded payloads:
only our own error types come out, every event it returns can be stored, and parsing is a pure,
order-independent function of the payload (same input, same events and dedup keys)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagehub.errors import EngagehubError
from engagehub.model import IncomingEvent, ParseResult, Rejection
from engagehub.storage.events import dump_properties
from engagehub.storage.sanity import problem
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors import braze, crossengage, moengage, segment, sendgrid, twilio
from engagehub.vendors.common import form_body, json_body
from tests.cases import case_files as all_case_files

NOW = 1_772_445_600_000
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def _twilio(body: bytes) -> ParseResult:
    params = dict(form_body(body))
    out = ParseResult()
    for parse in (
        lambda: twilio.parse_status(params, NOW, params.get("m")),
        lambda: twilio.parse_inbound(params, NOW),
    ):
        try:
            out.events.append(parse())
        except EngagehubError:
            pass
    return out


def _segment(call: str) -> Callable[[bytes], ParseResult]:
    return lambda body: segment.parse_envelope(segment.decode(body, call), NOW, call)


def _feed(body: bytes) -> ParseResult:
    rows = json_body(body)
    result = ParseResult()
    for index, row in enumerate(rows if isinstance(rows, list) else [rows]):
        try:
            result.events.append(crossengage.parse_feed_row(row, index))
        except EngagehubError as exc:
            result.rejected.append(Rejection(index, exc))
    return result


PARSERS: dict[str, Callable[[bytes], ParseResult]] = {
    **{f"segment/{call}": _segment(call) for call in ("batch", "track", "identify", "page")},
    "crossengage": lambda b: crossengage.parse_body(crossengage.decode(b)),
    "crossengage/feed": _feed,
    "sendgrid": sendgrid.parse,
    "braze": braze.parse,
    "moengage": moengage.parse,
    "twilio": _twilio,
}
VENDOR_CASES = {
    "segment/batch": "segment",
    "crossengage": "crossengage/api_",
    "crossengage/feed": "crossengage/feed",
    "sendgrid": "sendgrid",
    "braze": "braze",
    "moengage": "moengage",
}


def case_files(spec: str) -> list[Path]:
    """Recorded payloads of ``vendor`` or ``vendor/name-prefix``."""
    vendor, _, prefix = spec.partition("/")
    return [p for p in all_case_files(vendor) if p.name.startswith(prefix)]


def storable(event: IncomingEvent) -> None:
    """What the writer needs of every event a parser lets through."""
    assert isinstance(event.dedup_key, str)
    assert event.dedup_key
    error = problem(event)
    if error is not None:  # only NUL characters may reach here: the ingest screen rejects them
        assert error.details["field"] != "event_time", (event, error.message)
    orjson.loads(dump_properties(event.properties))
    if event.event is not None:
        assert event.event in get_taxonomy().events


def run(name: str, body: bytes) -> ParseResult | None:
    try:
        result = PARSERS[name](body)
    except EngagehubError as exc:
        failure: EngagehubError | None = exc
    else:
        failure = None
    if failure is not None:
        assert failure.http_status < 500, (name, failure)
        return None
    for event in result.events:
        storable(event)
        if result.from_raw:  # the ingest screen's shortcut must refuse exactly what it would
            fast, full = problem(event, from_raw=True), problem(event)
            assert (fast and fast.details) == (full and full.details), (name, event)
    for rejection in result.rejected:
        assert isinstance(rejection.error, EngagehubError)
        assert rejection.error.http_status < 500
    return result


@PROPS
@given(name=st.sampled_from(sorted(PARSERS)), body=st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_our_errors(name: str, body: bytes) -> None:
    run(name, body)


@PROPS
@given(name=st.sampled_from(sorted(PARSERS)), value=json_values)
def test_arbitrary_json_raises_only_our_errors(name: str, value: Any) -> None:
    run(name, dumps(value))


def dumps(value: Any) -> bytes:
    """JSON as any sender may write it (integers past 64 bits included)."""
    return json.dumps(value).encode()


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] + [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] + [path]
    return [path]


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_recorded_payloads_raise_only_our_errors(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(VENDOR_CASES)))
    case = data.draw(st.sampled_from(case_files(VENDOR_CASES[name])))
    original = orjson.loads(case.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_leaves(original)))
        odd = st.sampled_from(["", "1e999", "2024-13-45T00:00:00Z", 10**20, -1, "\u0000"])
        new = data.draw(json_values | odd)
        original = _replace(original, path, new)
    run(name, dumps(original))


def fingerprint(result: ParseResult) -> list[tuple[str, str | None, str | None, int]]:
    return sorted((e.dedup_key, e.event, e.contact, e.event_time) for e in result.events)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_mapping_is_stable_and_order_independent(seed: int) -> None:
    """Same payload -> same events; a batch's order does not change what each event becomes."""
    rng = random.Random(seed)
    for name, vendor in VENDOR_CASES.items():
        for case in case_files(vendor):
            body = case.read_bytes()
            first = run(name, body)
            assert first is not None
            assert fingerprint(first) == fingerprint(run(name, body) or ParseResult())
            shuffled = _shuffle_batch(orjson.loads(body), rng)
            if shuffled is None:
                continue
            again = run(name, dumps(shuffled))
            assert again is not None
            assert fingerprint(again) == fingerprint(first), case.name


def _shuffle_batch(payload: Any, rng: random.Random) -> Any:
    """The payload with its list of events shuffled, or None when it has no such list."""
    if isinstance(payload, list):
        return rng.sample(payload, len(payload))
    for key in ("batch", "events"):
        if isinstance(payload, dict) and isinstance(payload.get(key), list):
            items = payload[key]
            return {**payload, key: rng.sample(items, len(items))}
    return None


def test_every_field_of_every_recorded_payload_survives_hostile_values() -> None:
    """Exhaustive, not sampled: each leaf in turn becomes a value that broke parsers before
    (a 65-bit integer, a NUL, a date past 9999, a huge float, an empty string, a list)."""
    hostile: list[Any] = [10**20, "a\u0000b", "99999-01-01T00:00:00Z", 1e300, "", [1], {}]
    tried = 0
    for name, vendor in VENDOR_CASES.items():
        for case in case_files(vendor):
            original = orjson.loads(case.read_bytes())
            for path in _leaves(original):
                for value in hostile:
                    run(name, dumps(_replace(original, path, value)))
                    tried += 1
    assert tried > 500
