"""One public event JSON: the API, the CLI, exports and destinations send the documented shape."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from engagehub.destinations.senders import webhook_body
from engagehub.destinations.store import Destination
from engagehub.eventjson import SHAPE_VERSION, event_json
from engagehub.model import StoredEvent
from engagehub.storage import Database
from tests.conftest import make_source
from tests.ingest.test_segment_api import basic, track

DOC = Path(__file__).resolve().parent.parent / "docs" / "concepts" / "event-json.md"


def _documented() -> list[str]:
    return re.findall(r"^\| `(\w+)` \|", DOC.read_text(), re.M)


def _event(canonical: str | None = "Email Opened") -> StoredEvent:
    return StoredEvent(
        7, "ev-7", 3, "m1", "track", "open", canonical, "email", "u1", None, "a@x.io",
        "msg-1", "c1", 1_772_323_200_000, 1_772_323_201_000, {"url": "https://x.io"},
        '{"messageId": "m1"}',
    )  # fmt: skip


def test_every_field_is_documented_and_every_documented_field_is_sent() -> None:
    full = event_json(_event(), {3: "web"}, raw=True)
    assert list(full) == _documented()
    assert f"## Shape version {SHAPE_VERSION}" in DOC.read_text()


def test_names_ids_and_times() -> None:
    mapped = event_json(_event())
    assert (mapped["id"], mapped["event_id"], mapped["seq"]) == ("ev-7", "ev-7", 7)
    assert (mapped["event"], mapped["canonical"], mapped["canonical_event"]) == (
        "Email Opened",
        True,
        "Email Opened",
    )
    assert (mapped["timestamp"], mapped["received_at"]) == (
        "2026-03-01T00:00:00.000Z",
        "2026-03-01T00:00:01.000Z",
    )
    assert "source" not in mapped
    assert "raw" not in mapped
    unmapped = event_json(_event(None), {}, raw=True)
    assert (unmapped["event"], unmapped["canonical"], unmapped["canonical_event"]) == (
        "open",
        False,
        None,
    )
    assert (unmapped["source"], unmapped["raw"]) == ("3", {"messageId": "m1"})


def test_webhook_batches_carry_the_shape_and_its_version() -> None:
    dest = Destination(
        "hook", "webhook", "https://x.io", None, None, None, 100, False,
        0, None, 0, 0, 0, 0, 0, None, None, None, 0,
    )  # fmt: skip
    body = orjson.loads(webhook_body(dest, "b1", [_event(), _event(None)]))
    assert body["shape_version"] == SHAPE_VERSION
    assert body["events"] == [event_json(_event()), event_json(_event(None))]


def test_the_events_api_answers_the_same_shape(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    _, key = make_source(db)
    assert client.post("/v1/track", json=track("m1"), headers=basic(key)).status_code == 200
    answer = client.get("/api/events", headers=admin).json()
    assert answer["shape_version"] == SHAPE_VERSION
    (event,) = answer["events"]
    assert list(event) == _documented()
    assert (event["event"], event["source"], event["id"]) == (
        "Email Opened",
        "web",
        event["event_id"],
    )
