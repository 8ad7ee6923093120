"""Conversion goals: windows after delivery, late events, one conversion per message, CLI."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from engagehub.analytics import expr, service, stats
from engagehub.analytics import goals as goal_store
from engagehub.analytics.goals import parse_duration
from engagehub.cli import app, register
from engagehub.errors import PayloadError
from engagehub.settings import get_settings
from engagehub.storage import Database
from tests.analytics.helpers import T0, H, ev, feed, source_id


def converted(db: Database) -> dict[str, int | None]:
    with db.session() as conn:
        return dict(
            conn.execute("SELECT message_id, converted_at FROM analytics_messages").fetchall()
        )


def test_window_starts_at_delivery_and_late_events_settle(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        service.add_goal(conn, "c1", "Order Completed", "properties.total >= 20", "2h")
        # The order arrives before anything about the message (late delivery receipts).
        feed(conn, sid, [ev("o1", "Order Completed", T0 + 3 * H, user="u1", total=25)])
        feed(conn, sid, [ev("s", "Email Sent", T0, "m1", "c1", user="u1")])
        # Sent at T0: the order at T0+3h is outside 2h of the send...
        assert converted(db) == {"m1": None}
        # ...but the delivery receipt (T0+1.5h) moves the window start: now it is inside.
        feed(conn, sid, [ev("d", "Email Delivered", T0 + 90 * 60_000, "m1")])
        assert converted(db) == {"m1": T0 + 3 * H}
        # An earlier qualifying order, arriving late, becomes the conversion; one per message.
        feed(conn, sid, [ev("o0", "Order Completed", T0 + 2 * H, user="u1", total=99)])
        feed(conn, sid, [ev("o2", "Order Completed", T0 + 2 * H + 1, user="u1", total=5)])
        assert converted(db) == {"m1": T0 + 2 * H}
        data = stats.campaign_stats(conn, "c1")
        assert data["totals"]["conversions"] == 1
        # Someone else's order never converts this message; neither does one before delivery.
        feed(conn, sid, [ev("o3", "Order Completed", T0 + 2 * H, user="u9", total=99)])
        feed(conn, sid, [ev("s2", "Email Sent", T0 + 5 * H, "m2", "c1", user="u1")])
        assert converted(db) == {"m1": T0 + 2 * H, "m2": None}


def test_goal_added_after_the_fact_counts_past_events(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        feed(
            conn,
            sid,
            [
                ev("s", "SMS Sent", T0, "m1", "c1", user=None, contact="+14155550100"),
                ev("o", "Order Completed", T0 + H, user=None, contact="+14155550100"),
            ],
        )
        created = service.add_goal(conn, "c1", "Order Completed", None, "72h")
        assert created["backfilled_events"] == 1
    assert converted(db) == {"m1": T0 + H}


def test_where_expressions() -> None:
    e = expr.parse("properties.coupon == 'SPRING' and not (traits.plan in ['free', 'trial'])")
    assert e.matches({"coupon": "SPRING"}, {"plan": "pro"})
    assert not e.matches({"coupon": "SPRING"}, {"plan": "free"})
    assert not e.matches({"coupon": "spring"})
    assert expr.parse("properties.total > 9.5 or properties.vip").matches({"total": 10})
    assert not expr.parse("properties.total > 9.5").matches({"total": "10"})
    assert expr.parse('properties.a != "x"').matches({})
    for bad, token in [
        ("properties.coupon = 'X'", "="),
        ("coupon == 'X'", "coupon"),
        ("properties.a == 'x' and", ""),
        ("properties.a == 1; import os", ";"),
        ("(properties.a == 1", ""),
    ]:
        with pytest.raises(PayloadError) as info:
            expr.parse(bad)
        assert info.value.details["token"] == token, bad
        assert info.value.details["value"] == bad
    assert parse_duration("72h") == 72 * H
    with pytest.raises(PayloadError):
        parse_duration("-3h")


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ENGAGEHUB_DATABASE_URL", database_url)
    get_settings.cache_clear()
    register()
    return CliRunner()


def test_cli_goals_and_stats_match_the_api_numbers(cli: CliRunner, db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        feed(
            conn,
            sid,
            [
                ev("s", "Email Sent", T0, "m1", "c1", campaign_name="Spring", variation_id="A"),
                ev("d", "Email Delivered", T0 + 1, "m1"),
                ev("c", "Email Link Clicked", T0 + 2, "m1", url="https://x.test/a"),
                ev("o", "Order Completed", T0 + H, coupon="SPRING"),
            ],
        )
    args = ["goals", "add", "--campaign", "c1", "--event", "Order Completed"]
    r = cli.invoke(app, [*args, "--where", "properties.coupon == 'SPRING'", "--within", "72h"])
    assert r.exit_code == 0, r.output
    assert "1 past goal events" in r.output
    bad = cli.invoke(app, [*args, "--where", "properties.coupon === 'X'", "--within", "72h"])
    assert bad.exit_code != 0
    assert isinstance(bad.exception, PayloadError)
    listed = cli.invoke(app, ["goals", "list"])
    assert "Order Completed" in listed.output
    r = cli.invoke(app, ["stats", "c1", "--json"])
    assert r.exit_code == 0, r.output
    data = orjson.loads(r.output)
    with db.session() as conn:
        assert data == stats.campaign_stats(conn, "c1")
    assert data["totals"]["conversions"] == 1
    table = cli.invoke(app, ["stats", "c1"], terminal_width=200)
    assert table.exit_code == 0, table.output
    for line in ("sent", "conversions", "https://x.test/a", "100.00%"):
        assert line in table.output
    missing = cli.invoke(app, ["stats", "nope"])
    assert missing.exit_code != 0
    with db.session() as conn:
        [only] = goal_store.load(conn)
    edited = cli.invoke(
        app,
        [
            "goals",
            "edit",
            str(only.id),
            *args[2:],
            "--where",
            "properties.coupon == 'X'",
            "--within",
            "48h",
        ],
    )
    assert edited.exit_code == 0, edited.output
    assert f"goal {only.id} of campaign c1: Order Completed within 48h (0 past goal events)" in (
        edited.output
    )
    with db.session() as conn:
        assert stats.campaign_stats(conn, "c1")["totals"]["conversions"] == 0
        [changed] = goal_store.load(conn)
    assert (changed.id, changed.where, changed.within_ms) == (
        only.id,
        "properties.coupon == 'X'",
        48 * 3_600_000,
    )
