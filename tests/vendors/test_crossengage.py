"""CrossEngage parsing: the API body, Data Feed rows, channel-driven mapping, content-hash dedup."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engagehub.errors import PayloadError
from engagehub.model import ParseResult, Rejection
from engagehub.vendors import crossengage
from tests.cases import CASES, check, result_dict


def test_api_body() -> None:
    case = CASES / "crossengage" / "api_two_events.json"
    result = crossengage.parse_body(crossengage.decode(case.read_bytes()))
    check(case, result_dict(result))
    assert [e.event for e in result.events] == [
        "Email Sent",
        "Email Delivered",
        "Message Hard Bounced",
        None,
    ]
    assert result.rejected[0].index == 3
    assert "timestamp" in result.rejected[0].error.message


def test_feed_rows() -> None:
    case = CASES / "crossengage" / "feed.json"
    result = ParseResult()
    for index, row in enumerate(orjson.loads(case.read_bytes())):
        try:
            result.events.append(crossengage.parse_feed_row(row, index))
        except PayloadError as exc:
            result.rejected.append(Rejection(index, exc))
    check(case, result_dict(result))
    assert [r.index for r in result.rejected] == [3, 4]


def test_api_and_feed_agree_on_dedup_keys() -> None:
    api = crossengage.decode(
        orjson.dumps(
            {
                "id": "ABC12345",
                "events": [
                    {
                        "event": "Message Sent",
                        "timestamp": "2022-01-11T00:00:00Z",
                        "properties": {"channel": "Email", "type": "Newsletter"},
                    }
                ],
            }
        )
    )
    (from_api,) = crossengage.parse_body(api).events
    from_feed = crossengage.parse_feed_row(
        {
            "id": "ABC12345",
            "event": "Message Sent",
            "timestamp": "2022-01-11T00:00:00Z",
            "channel": "Email",
            "type": "Newsletter",
        },
        0,
    )
    assert from_api.dedup_key == from_feed.dedup_key


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "id"),
        ({"id": "", "events": []}, "id"),
        ({"id": "u"}, "events"),
        (
            {"id": "u", "events": [{"event": "Message Sent", "timestamp": "2022-01-01"}] * 51},
            "events",
        ),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(PayloadError) as info:
        crossengage.decode(orjson.dumps(body))
    assert info.value.details.get("field") == field


def test_identical_events_in_one_request_are_kept_apart(tmp_path: Path) -> None:
    event = {"event": "Message Sent", "timestamp": "2022-01-11T00:00:00Z"}
    result = crossengage.parse_body(
        crossengage.decode(orjson.dumps({"id": "u", "events": [event, event]}))
    )
    assert len({e.dedup_key for e in result.events}) == 2
