"""Feature reads of the log: columns from the model; name lookups go through event_index."""

from __future__ import annotations

import dataclasses

from engagehub.model import LOG_COLUMNS, IncomingEvent, StoredEvent
from engagehub.processing import run_round, run_until_caught_up
from engagehub.processing.log_index import LogIndex
from engagehub.storage import Database, logread
from engagehub.storage import events as log
from engagehub.storage.event_index import NAME, keyed
from tests.conftest import make_source


def _ev(
    i: int, canonical: str | None, vendor: str, contact: str | None, user: str | None
) -> IncomingEvent:
    return IncomingEvent(
        f"e{i}", 1_700_000_000_000 + i, "{}", vendor_event=vendor, event=canonical,
        contact=contact, user_id=user,
    )  # fmt: skip


def test_log_columns_are_the_models_fields() -> None:
    assert [f.name for f in dataclasses.fields(StoredEvent)] == list(LOG_COLUMNS)
    assert ", ".join(LOG_COLUMNS) == log.COLUMNS


def test_performers_are_found_indexed_and_in_the_unindexed_tail(db: Database) -> None:
    src, _ = make_source(db)
    events = [
        _ev(0, "Order Completed", "order_done", "a@x.io", None),
        _ev(1, None, "Order Completed", None, "u2"),  # unmapped: its vendor name counts
        _ev(2, "Email Opened", "open", "c@x.io", None),
        _ev(3, "Email Opened", "Order Completed", "d@x.io", None),  # canonical name wins
        _ev(4, "Order Completed", "order_done", "e@x.io", "u5"),
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, 10, events[:3])])
        run_until_caught_up(conn, [LogIndex()])
        log.append(conn, [log.Batch(src.id, 10, events[3:])])  # not indexed yet
        rows = logread.performers(conn, "Order Completed")
        assert {(r["contact"], r["user_id"]) for r in rows} == {
            ("a@x.io", None),
            ("e@x.io", "u5"),
            (None, "u2"),
        }
        run_round(conn, [LogIndex()], 10)
        again = logread.performers(conn, "Order Completed", since=1_700_000_000_001)
        assert {(r["contact"], r["user_id"]) for r in again} == {("e@x.io", "u5"), (None, "u2")}


def test_the_name_lookup_reads_no_whole_log(db: Database) -> None:
    if db.dialect != "sqlite":
        return  # the plan check is SQLite's; PostgreSQL runs the same SQL above
    with db.session() as conn:
        clause, params = keyed(conn, NAME, "Order Completed")
        plan = conn.all(
            f"EXPLAIN QUERY PLAN SELECT contact FROM events WHERE {clause} AND {NAME} = ?",
            [*params, "Order Completed"],
        )
        steps = " | ".join(str(r["detail"]) for r in plan)
        assert "event_index" in steps
        assert "SCAN events" not in steps, steps
