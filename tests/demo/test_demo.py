"""``engagehub demo``: a seeded week of signed traffic through the real endpoints, counted."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engagehub.demo import run as demo_run
from engagehub.demo import scenario
from engagehub.demo import week as demo_week
from engagehub.demo.campaigns import SOURCES
from engagehub.errors import ConfigError
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.cli.test_cli import run as cli
from tests.waiting import eventually

START = datetime(2026, 3, 2, tzinfo=UTC)


def wait_for_processors(db: Database) -> None:
    """The app's processors follow the log after each commit: wait until they reach the head."""

    def caught_up() -> bool:
        with db.session() as conn:
            head = log.head(conn)
            behind = conn.scalar("SELECT count(*) FROM processor_offsets WHERE seq < ?", (head,))
        return not behind

    eventually(caught_up, 20, what="processors caught up")


def demo_rows(db: Database) -> list[dict[str, object]]:
    with db.session() as conn:
        return conn.all(
            "SELECT s.kind, e.event, e.vendor_event, e.user_id, e.event_time, e.dedup_key "
            "FROM events e JOIN sources s ON s.id = e.source_id WHERE s.name LIKE 'demo-%'"
        )


def test_demo_week_lands_as_planned(
    client: TestClient, db: Database, admin: dict[str, str], tmp_path: Path
) -> None:
    plan = demo_week.build(seed=7, start=START, users=20)
    report = demo_run.run(client, plan, tmp_path / "avro", db=db)
    assert report.requests == len(plan.calls)
    assert report.avro_imported == sum(len(r) for r in plan.avro.values()) > 0

    rows = demo_rows(db)
    # Every vendor's traffic passed signature/token checks and mapped to the names we meant.
    assert Counter(r["kind"] for r in rows) == plan.by_vendor()
    assert set(plan.by_vendor()) == set(SOURCES)
    assert Counter(r["event"] for r in rows) == plan.expected()
    stats = client.get("/api/events/unmapped", headers=admin).json()
    assert stats  # Order Completed is a business event, counted as unmapped, not dropped

    # Vendor-timed events fall inside the simulated week.
    week = (plan.start_ms, plan.start_ms + 8 * scenario.DAY)
    timed = [r for r in rows if r["kind"] in ("sendgrid", "braze", "moengage", "crossengage")]
    assert all(week[0] <= int(str(r["event_time"])) < week[1] for r in timed)

    # Conversions follow a click by the same user.
    clicks = [r for r in rows if r["event"] == "Email Link Clicked"]
    orders = [r for r in rows if r["vendor_event"] == "Order Completed"]
    assert orders
    for order in orders:
        assert any(
            c["user_id"] == order["user_id"]
            and int(str(c["event_time"])) < int(str(order["event_time"]))
            for c in clicks
        ), order

    # STOP replies and unsubscribes reached consent.
    wait_for_processors(db)
    assert plan.stop_phones
    assert plan.unsubscribed_emails
    for phone in plan.stop_phones:
        body = client.get("/api/subscriptions", params={"key": phone}, headers=admin).json()
        sms = [s for s in body["subscriptions"] if s["channel"] == "sms"]
        assert sms, body
        assert sms[0]["status"] == "unsubscribed", body
    for email in plan.unsubscribed_emails:
        body = client.get("/api/subscriptions", params={"key": email}, headers=admin).json()
        assert any(s["status"] == "unsubscribed" for s in body["subscriptions"]), body

    # Same seed again: same dedup keys, so nothing new is stored.
    with db.session() as conn:
        head = log.head(conn)
    again = demo_run.run(
        client, demo_week.build(seed=7, start=START, users=20), tmp_path / "b", db=db
    )
    assert again.avro_imported == 0
    assert again.avro_duplicates == report.avro_imported
    with db.session() as conn:
        assert log.head(conn) == head


def test_seed_decides_everything() -> None:
    one, same, other = (demo_week.build(s, START, 10) for s in (5, 5, 6))
    assert one.calls == same.calls
    assert one.avro == same.avro
    assert one.calls != other.calls
    with pytest.raises(ValueError, match="users must be between"):
        demo_week.build(1, START, 0)


def test_other_seed_cannot_reuse_sources(db: Database) -> None:
    demo_run.ensure_sources_db(db, demo_run.Credentials(1))
    demo_run.ensure_sources_db(db, demo_run.Credentials(1))  # idempotent
    with pytest.raises(ConfigError, match="another --seed") as info:
        demo_run.ensure_sources_db(db, demo_run.Credentials(2))
    assert info.value.details["seed"] == 2


def test_forged_demo_traffic_is_refused(client: TestClient, db: Database, tmp_path: Path) -> None:
    demo_run.ensure_sources_db(db, demo_run.Credentials(1))
    plan = demo_week.build(seed=2, start=START, users=3)  # signed with seed 2's keys
    plan.avro.clear()
    with pytest.raises(demo_run.DemoError, match="refused: HTTP 401"):
        demo_run.send(client, plan, demo_run.Credentials(2), demo_run.Report())


def test_demo_command_in_process(database_url: str, db: Database, tmp_path: Path) -> None:
    out = cli(
        database_url,
        "demo",
        "--seed",
        "4",
        "--users",
        "8",
        "--start",
        "2026-03-02",
        "--out",
        str(tmp_path / "avro"),
    ).stdout
    assert "Where to look" in out
    assert "demo-sendgrid" in out
    assert list((tmp_path / "avro").rglob("event_type=users.messages.email.Send/*/*.avro"))
    plan = demo_week.build(4, START, 8)
    assert Counter(r["event"] for r in demo_rows(db)) == plan.expected()
    with db.session() as conn:  # the command ran the processors before it returned
        assert not conn.scalar(
            "SELECT count(*) FROM processor_offsets WHERE seq < ?", (log.head(conn),)
        )
