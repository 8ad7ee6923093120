"""The fold's cost-shaped parts: goal recipients found by index, one rollup row per hour."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from engagehub.analytics import fold, service, staging, stats
from engagehub.settings import Settings
from engagehub.storage import Database, migrate, open_database
from engagehub.storage.sqlite import SQLiteConnection
from tests.analytics.helpers import T0, H, ev, feed, source_id


def test_goal_recipients_by_user_and_by_contact_convert_across_windows(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        service.add_goal(conn, "c1", "Order Completed", None, "24h")
        feed(conn, sid, [ev("s1", "Email Sent", T0, "m1", "c1", user="u1")])
        feed(conn, sid, [ev("s2", "SMS Sent", T0, "m2", "c1", user=None, contact="+14155550100")])
        feed(conn, sid, [ev("s3", "SMS Sent", T0, "m3", "c1", user=None, contact="+14155550199")])
        # Later windows: each order finds its recipient's message (the contact index is partial:
        # only lifecycles with a contact are in it).
        feed(conn, sid, [ev("o1", "Order Completed", T0 + H, user="u1")])
        feed(
            conn, sid, [ev("o2", "Order Completed", T0 + 2 * H, user=None, contact="+14155550100")]
        )
        converted = dict(
            conn.execute("SELECT message_id, converted_at FROM analytics_messages").fetchall()
        )
        assert converted == {"m1": T0 + H, "m2": T0 + 2 * H, "m3": None}
        assert stats.campaign_stats(conn, "c1")["totals"]["conversions"] == 2
        # Removing the goal finds what it converted through the (partial) goal index.
        goal = conn.scalar("SELECT id FROM analytics_goals")
        service.remove_goal(conn, int(goal))
        assert stats.campaign_stats(conn, "c1")["totals"]["conversions"] == 0
        assert conn.scalar("SELECT COUNT(*) FROM analytics_messages WHERE goal_id IS NOT NULL") == 0


def _plans(tmp_path: Path, sql_of: Callable[[str], str]) -> dict[str, list[str]]:
    """SQLite's plan of ``sql_of(column)`` for each recipient key, on a fresh migrated file."""
    url = f"sqlite:///{tmp_path}/plan.db"
    database = open_database(url, Settings(database_url=url))
    try:
        with database.session() as conn:
            migrate(conn)
            staging.prepare(conn)
            return {
                column: [str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql_of(column)}")]
                for column in staging.RECIPIENT_KEYS
            }
    finally:
        database.close()


def test_goal_recipients_are_looked_up_by_index_not_by_scanning(tmp_path: Path) -> None:
    for column, plan in _plans(tmp_path, staging.recipients_sql).items():
        assert any(step.startswith("SCAN g") for step in plan), plan
        assert not any(step.startswith("SCAN m") for step in plan), plan
        assert any("SEARCH m USING" in step for step in plan), plan
        if column != "message_id":  # recipient AND campaign from the index (0313)
            assert any(f"({column}=? AND campaign_id=?)" in step for step in plan), plan


def test_conversions_find_goal_events_by_recipient_and_campaign(tmp_path: Path) -> None:
    for column, plan in _plans(tmp_path, fold.conversions_sql).items():
        assert not any(step.startswith("SCAN ge") for step in plan), plan
        wanted = "message_id=?" if column == "message_id" else f"{column}=? AND campaign_id=?"
        assert any("SEARCH ge USING INDEX" in s and wanted in s for s in plan), plan


def test_work_tables_come_back_after_a_rolled_back_first_fold(db: Database) -> None:
    with db.session() as conn:
        try:
            with conn.transaction():
                staging.prepare(conn)  # the first fold of this connection creates them...
                raise RuntimeError("round fails")
        except RuntimeError:
            pass
        with conn.transaction():  # ...the rollback took them away: the next one makes them again
            staging.prepare(conn)
            milestones = int(conn.scalar("SELECT COUNT(*) FROM a_ms"))
            assert milestones > 20
        with conn.transaction():  # kept for the connection, emptied each fold, milestones kept
            conn.execute("INSERT INTO a_touched (mid) VALUES ('m1')")
            staging.prepare(conn)
            assert conn.scalar("SELECT COUNT(*) FROM a_touched") == 0
            assert conn.scalar("SELECT COUNT(*) FROM a_ms") == milestones


def test_milestones_in_other_hours_than_the_first_count_in_their_own(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        feed(
            conn,
            sid,
            [
                # Queued in one hour, sent at the end of the next, delivered just after it.
                ev("q", "SMS Queued", T0 - H, "m1", "c1"),
                ev("s", "SMS Sent", T0 + H - 1, "m1"),
                ev("d", "SMS Delivered", T0 + H + 1, "m1"),
                ev("o", "SMS Link Clicked", T0 + H + 2, "m1", url="https://x.test/a"),
                # A second message: everything in its first hour.
                ev("s2", "Email Sent", T0 + 10, "m2", "c1"),
                ev("d2", "Email Delivered", T0 + 20, "m2"),
            ],
        )
        hours = {
            (int(r["bucket"]), r["channel"]): (r["queued"], r["sent"], r["delivered"], r["clicked"])
            for r in conn.all(
                "SELECT bucket, channel, queued, sent, delivered, clicked FROM analytics_rollups "
                "WHERE grain = ? ORDER BY bucket",
                (H,),
            )
        }
        assert hours == {
            (T0 - H, "sms"): (1, 0, 0, 0),
            (T0, "sms"): (0, 1, 0, 0),
            (T0, "email"): (0, 1, 1, 0),
            (T0 + H, "sms"): (0, 0, 1, 1),
        }
        day = conn.all(
            "SELECT queued, sent, delivered, clicked FROM analytics_rollups WHERE grain <> ? "
            "ORDER BY channel",
            (H,),
        )
        assert [tuple(r.values()) for r in day] == [(0, 1, 1, 0), (1, 1, 1, 1)]


_PERMANENT = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(analytics_\w+)(?:\s+(?:AS\s+)?(\w+))?")
_SCAN = re.compile(r"^SCAN (\w+)")
_SMALL = {"analytics_goals"}  # definitions, a few rows per campaign: read whole by design


def test_no_fold_statement_scans_a_derived_table(tmp_path: Path) -> None:
    """Trace a whole round (merge, goal, reason, clicks, touched lifecycles) on SQLite: with no
    statistics, a join of a small work table with a derived table may be planned as a scan of
    the derived table (each window then costs as much as the table holds: quadratic)."""
    url = f"sqlite:///{tmp_path}/trace.db"
    database = open_database(url, Settings(database_url=url))
    try:
        with database.session() as conn:
            migrate(conn)
        sid = source_id(database)
        with database.session() as conn:
            service.add_goal(conn, "c1", "Order Completed", None, "24h")
            feed(conn, sid, [ev("p", "Email Opened", T0, "prov-2", provider_message_id=None)])
            first = [ev(f"s{i}", "Email Sent", T0, f"m{i}", "c1") for i in range(20)]
            feed(conn, sid, first)
            assert isinstance(conn, SQLiteConnection)
            traced: list[str] = []
            conn.raw.set_trace_callback(traced.append)
            try:
                feed(
                    conn,
                    sid,
                    [
                        ev("d1", "Email Delivered", T0 + 1, "m1"),
                        ev("c1", "Email Link Clicked", T0 + H, "m1", url="https://x.test/a"),
                        ev("b2", "Email Bounced", T0 + 2, "m2", bounce_reason="550 unknown"),
                        ev("l2", "Email Sent", T0, "m2", provider_message_id="prov-2"),
                        ev("o1", "Order Completed", T0 + 2 * H, user="u1"),
                    ],
                )
            finally:
                conn.raw.set_trace_callback(None)
            assert conn.scalar(
                "SELECT converted_at FROM analytics_messages WHERE message_id = 'm1'"
            )
            assert conn.scalar(
                "SELECT first_opened FROM analytics_messages WHERE message_id = 'm2'"
            )
            bad: list[tuple[str, str]] = []
            folding = [s for s in traced if "analytics_" in s and not s.startswith("EXPLAIN")]
            assert len(folding) > 20, traced
            for statement in folding:
                tables = {alias or name: name for name, alias in _PERMANENT.findall(statement)}
                tables.update({name: name for name in tables.values()})
                for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall():
                    scan = _SCAN.match(str(row[3]))
                    if scan and tables.get(scan.group(1), "a_") not in _SMALL | {"a_"}:
                        bad.append((str(row[3]), statement))
            assert not bad, bad
    finally:
        database.close()
