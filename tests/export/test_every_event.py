"""Export and destinations carry every event: custom and unmapped ones under their vendor name."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson

from engagehub.destinations import patterns
from engagehub.destinations.senders import segment_body
from engagehub.export import runner
from engagehub.model import IncomingEvent
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import make_source

T0 = 1_764_000_000_000


def _events() -> list[IncomingEvent]:
    def one(key: str, event: str | None, vendor: str | None, kind: str = "track") -> IncomingEvent:
        return IncomingEvent(
            dedup_key=key,
            event_time=T0,
            raw="{}",
            type=kind,
            vendor_event=vendor,
            event=event,
            user_id="u1",
            properties={"n": key},
        )

    return [
        one("a", "Email Delivered", "delivered"),
        one("b", None, "Order Completed"),
        one("c", None, "users.messages.something.New"),
        one("d", None, None, "identify"),
    ]


def _feed(db: Database) -> None:
    src, _ = make_source(db, "feed")
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, T0, _events())])


def _counts(out: Path) -> list[tuple[str, int]]:
    return duckdb.sql(
        f"SELECT event_type, count(*) FROM read_parquet('{out}/**/*.parquet', "
        "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()


def test_export_carries_custom_and_unmapped_events(db: Database, tmp_path: Path) -> None:
    _feed(db)
    with db.session() as conn:
        result = runner.run(conn, str(tmp_path / "all"), "parquet")
        assert result.events == 4
        assert _counts(tmp_path / "all") == [
            ("Email Delivered", 1),
            ("Order Completed", 1),
            ("identify", 1),
            ("users.messages.something.New", 1),
        ]
        picked = runner.run(conn, str(tmp_path / "some"), "parquet", events="Order *,Email *")
    assert picked.events == 2
    assert _counts(tmp_path / "some") == [("Email Delivered", 1), ("Order Completed", 1)]


def test_patterns_match_vendor_names_of_events_without_a_canonical_one() -> None:
    assert patterns.matches(None, None, None)
    assert patterns.matches("Order *", None, "Order Completed")
    assert not patterns.matches("Order *", "Email Opened", "Order Completed")
    assert patterns.sql(None) == ("1 = 1", [])


def test_segment_destination_body_names_every_event(db: Database) -> None:
    _feed(db)
    with db.session() as conn:
        stored = log.read_range(conn, 0, 10)
    calls = orjson.loads(segment_body(stored))["batch"]
    assert [(c["type"], c.get("event")) for c in calls] == [
        ("track", "Email Delivered"),
        ("track", "Order Completed"),
        ("track", "users.messages.something.New"),
        ("identify", None),
    ]
    assert calls[3]["traits"] == {"n": "d"}
