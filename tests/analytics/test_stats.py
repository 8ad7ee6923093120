"""Stats answers read few rows: the campaign's own goals, series points of any metric."""

from __future__ import annotations

from engagehub.analytics import goals, service, stats
from engagehub.storage import Database
from tests.analytics.helpers import T0, H, ev, feed, source_id


def test_series_keeps_points_whose_counts_are_outside_the_series_metrics(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        feed(
            conn,
            sid,
            [
                ev("s", "Email Sent", T0, "m1", "c1"),
                ev("d", "Email Deferred", T0 + 3 * H, "m1"),  # deferrals are not a series metric
                ev("o", "Email Opened", T0 + 5 * H, "m1"),
            ],
        )
        data = stats.campaign_stats(conn, "c1", interval="hour")
        points = {p["t"]: p for p in data["series"]["points"]}
        assert len(points) == 3
        deferred = points["2026-03-02T13:00:00.000Z"]
        assert deferred == {
            "t": "2026-03-02T13:00:00.000Z",
            "sent": 0,
            "delivered": 0,
            "opens_unique": 0,
            "clicks_unique": 0,
            "bounced": 0,
            "conversions": 0,
        }
        assert points["2026-03-02T15:00:00.000Z"]["opens_unique"] == 1
        assert data["totals"]["deferred"] == 1
        # The automatic interval: hours for a span of up to three days, days beyond.
        assert stats.campaign_stats(conn, "c1")["series"]["interval"] == "hour"
        feed(conn, sid, [ev("late", "Email Opened", T0 + 80 * H, "m1")])
        assert stats.campaign_stats(conn, "c1")["series"]["interval"] == "day"
        assert stats.campaign_stats(conn, "c1", T0, T0 + 3 * H)["series"]["interval"] == "hour"


def test_goals_load_one_campaigns_goals_only(db: Database) -> None:
    with db.session() as conn:
        mine = service.add_goal(conn, "c1", "Order Completed", None, "24h")
        service.add_goal(conn, "c2", "Order Completed", None, "24h")
        assert [g.campaign_id for g in goals.load(conn)] == ["c1", "c2"]
        assert [g.id for g in goals.load(conn, "c1")] == [mine["id"]]
        assert goals.load(conn, "nope") == []


def test_goal_matcher_is_compiled_once_per_set_of_goals(db: Database) -> None:
    with db.session() as conn:
        service.add_goal(conn, "c1", "Order Completed", "properties.total > 10", "24h")
        first = goals.matcher(tuple(goals.load(conn)))
        assert goals.matcher(tuple(goals.load(conn))) is first  # the next round: same goals
        service.add_goal(conn, "c2", "Order Completed", None, "24h")
        changed = goals.matcher(tuple(goals.load(conn)))
        assert changed is not first
        assert changed.campaigns == {"c1", "c2"}
