"""Lifecycles and rollups on both backends: milestones, order independence, replay safety."""

from __future__ import annotations

import random

import pytest

from engagehub.analytics import service, stats
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.processing import reset, run_until_caught_up
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.analytics.helpers import T0, H, clear_log, ev, feed, snapshot, source_id


def email_story(mid: str = "m1", campaign: str | None = "c1") -> list:
    return [
        ev(f"{mid}-s", "Email Sent", T0, mid, campaign, campaign_name="Spring", variation_id="A"),
        ev(f"{mid}-d", "Email Delivered", T0 + 60_000, mid),
        ev(f"{mid}-mo", "Email Machine Opened", T0 + 61_000, mid),
        ev(f"{mid}-o1", "Email Opened", T0 + H + 5, mid),
        ev(f"{mid}-o2", "Email Opened", T0 + 2 * H, mid),
        ev(f"{mid}-c1", "Email Link Clicked", T0 + 2 * H + 1, mid, url="https://x.test/a"),
        ev(f"{mid}-c2", "Email Link Clicked", T0 + 2 * H + 2, mid, url="https://x.test/a"),
        ev(f"{mid}-c3", "Email Link Clicked", T0 + 2 * H + 3, mid, url="https://x.test/b"),
    ]


def test_milestones_status_and_stats(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        feed(conn, sid, email_story())
        msg = conn.one("SELECT * FROM analytics_messages WHERE message_id = 'm1'")
        assert msg is not None
        assert msg["first_sent"] == T0
        assert msg["first_delivered"] == T0 + 60_000
        assert msg["first_machine_opened"] == T0 + 61_000
        assert msg["first_opened"] == T0 + H + 5
        assert msg["first_clicked"] == T0 + 2 * H + 1
        assert msg["status"] == "clicked"
        assert (msg["campaign_id"], msg["variation"], msg["channel"]) == ("c1", "A", "email")
        data = stats.campaign_stats(conn, "c1")
    t = data["totals"]
    assert (t["sent"], t["delivered"], t["opens_unique"], t["opens_total"]) == (1, 1, 1, 2)
    assert (t["machine_opens_unique"], t["clicks_unique"], t["clicks_total"]) == (1, 1, 3)
    assert data["rates"]["open_rate"] == 1.0
    assert data["campaign"]["name"] == "Spring"
    assert data["top_links"][0] == {
        "url": "https://x.test/a",
        "clicks_unique": 1,
        "clicks_total": 2,
    }
    # Range by milestone time: the first hour holds the send and delivery, not the opens.
    with db.session() as conn:
        first_hour = stats.campaign_stats(conn, "c1", T0, T0 + H)
    assert first_hour["totals"]["sent"] == 1
    assert first_hour["totals"]["opens_unique"] == 0


def test_bounce_reasons_and_failures(db: Database) -> None:
    sid = source_id(db)
    events = [
        ev("b-s", "Email Sent", T0, "b1", "c2"),
        ev("b-b", "Email Bounced", T0 + 5, "b1", bounce_type="hard", bounce_reason="550 no user"),
        ev("b2-s", "Email Sent", T0, "b2", "c2"),
        ev("b2-d", "Email Deferred", T0 + 1, "b2"),
        ev("b2-b", "Email Soft Bounced", T0 + 9, "b2", bounce_reason="mailbox full"),
        ev("s1", "SMS Queued", T0, "s1", "c2"),
        ev("s1-f", "SMS Failed", T0 + 3, "s1", error_code="30007"),
    ]
    with db.session() as conn:
        feed(conn, sid, events)
        data = stats.campaign_stats(conn, "c2")
        statuses = dict(
            conn.execute("SELECT message_id, status FROM analytics_messages").fetchall()
        )
    assert statuses == {"b1": "bounced", "b2": "soft_bounced", "s1": "failed"}
    t = data["totals"]
    assert (t["sent"], t["bounced"], t["soft_bounced"], t["failed"], t["deferred"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert data["rates"]["bounce_rate"] == 1.0
    reasons = {r["reason"]: r["count"] for r in data["bounce_reasons"]}
    assert reasons == {"550 no user": 1, "mailbox full": 1, "30007": 1}
    channels = {row["channel"] for row in data["breakdown"]}
    assert channels == {"email", "sms"}


def test_any_order_and_window_gives_the_same_state(db: Database) -> None:
    """Out-of-order arrival (the campaign learnt last, an earlier open late) settles the same."""
    sid = source_id(db)
    events = email_story("m1") + email_story("m2") + email_story("m3", campaign="c9")
    with db.session() as conn:
        feed(conn, sid, events)
        expected = snapshot(conn)
        for seed in range(3):
            clear_log(conn)
            reset(conn, AnalyticsProcessor())
            shuffled = list(events)
            random.Random(seed).shuffle(shuffled)
            feed(conn, sid, shuffled, window=1 + seed * 3)
            assert snapshot(conn) == expected


def test_a_window_cut_short_is_replayed_whole(db: Database) -> None:
    """Effects commit with the cursor: a crash mid-window leaves nothing, the replay counts once."""
    sid = source_id(db)
    with db.session() as conn:
        feed(conn, sid, email_story())
        before = snapshot(conn)
        processor = AnalyticsProcessor()
        reset(conn, processor)
        window = log.read_range(conn, 0, log.head(conn))

        def crash() -> None:
            with conn.transaction():
                processor.apply(conn, window[:4])
                raise RuntimeError("crash before the cursor moved")

        with pytest.raises(RuntimeError, match="crash"):
            crash()
        assert conn.scalar("SELECT COUNT(*) FROM analytics_messages") == 0
        run_until_caught_up(conn, [processor], 5)
        assert snapshot(conn) == before
        # A full rebuild from the log gives the same derived state.
        reset(conn, processor)
        run_until_caught_up(conn, [processor], 3)
        assert snapshot(conn) == before


def test_campaign_list_totals(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        feed(conn, sid, email_story("m1") + email_story("m2") + email_story("x", "c3"))
        listed = {c["id"]: c for c in stats.list_campaigns(conn)}
    assert set(listed) == {"c1", "c3"}
    assert listed["c1"]["totals"]["sent"] == 2
    assert listed["c1"]["totals"]["clicks_total"] == 6
    assert listed["c3"]["totals"]["delivered"] == 1


def test_provider_ids_join_the_message_whenever_the_link_arrives(db: Database) -> None:
    """SendGrid events known only by sg_message_id merge into our message once linked."""
    sid = source_id(db)
    with db.session() as conn:
        feed(
            conn,
            sid,
            [
                ev("p-d", "Email Delivered", T0 + 60_000, "prov-1"),
                ev("p-o", "Email Opened", T0 + H, "prov-1"),
            ],
        )
        assert stats.list_campaigns(conn) == []  # no campaign known for prov-1 yet
        feed(
            conn,
            sid,
            [ev("s", "Email Sent", T0, "m1", "c1", provider_message_id="prov-1")],
        )
        rows = conn.all("SELECT message_id, status, first_opened FROM analytics_messages")
        assert rows == [{"message_id": "m1", "status": "opened", "first_opened": T0 + H}]
        totals = stats.campaign_stats(conn, "c1")["totals"]
        assert (totals["sent"], totals["delivered"], totals["opens_unique"]) == (1, 1, 1)
        feed(conn, sid, [ev("p-c", "Email Link Clicked", T0 + 2 * H, "prov-1", url="https://a")])
        view = service.message_view(conn, "prov-1")
    assert view["message_id"] == "m1"
    assert view["provider_ids"] == ["prov-1"]
    assert view["status"] == "clicked"
    assert [e["event"] for e in view["timeline"]] == [
        "Email Sent",
        "Email Delivered",
        "Email Opened",
        "Email Link Clicked",
    ]


def test_bounces_without_reason_and_clicks_without_url_are_counted(db: Database) -> None:
    """Every bounce and click shows in the tables: under placeholders when the vendor sent none."""
    sid = source_id(db)
    events = [
        ev("n1-s", "Email Sent", T0, "n1", "c7"),
        ev("n1-b", "Email Bounced", T0 + 5, "n1", bounce_type="hard"),
        ev("n2-s", "Email Sent", T0, "n2", "c7"),
        ev("n2-b", "Email Bounced", T0 + 6, "n2"),
        ev("n3-s", "Email Sent", T0, "n3", "c7"),
        ev("n3-c1", "Email Link Clicked", T0 + 7, "n3"),
        ev("n3-c2", "Email Link Clicked", T0 + 8, "n3"),
        ev("n3-c3", "Email Link Clicked", T0 + 9, "n3"),
        # A reason given later beats the placeholder of an earlier event of the same message.
        ev("n4-s", "Email Sent", T0, "n4", "c7"),
        ev("n4-d", "Email Soft Bounced", T0 + 1, "n4"),
        ev("n4-b", "Email Bounced", T0 + 2, "n4", bounce_reason="550 no user"),
    ]
    with db.session() as conn:
        feed(conn, sid, events)
        data = stats.campaign_stats(conn, "c7")
    assert data["bounce_reasons"] == [
        {"reason": "(no reason given)", "count": 2},
        {"reason": "550 no user", "count": 1},
    ]
    assert data["top_links"] == [{"url": "(no URL)", "clicks_unique": 1, "clicks_total": 3}]


def test_bot_clicks_are_kept_apart_from_human_clicks(db: Database) -> None:
    sid = source_id(db)
    scanner = ev("m1-bot", "Email Link Clicked", T0 + 61_500, "m1", url="https://x.test/a",
                 bot_click=True, bot_click_reason="scanner_user_agent")  # fmt: skip
    with db.session() as conn:
        feed(conn, sid, [*email_story(), scanner])
        data = stats.campaign_stats(conn, "c1")
        view = service.message_view(conn, "m1")
    t = data["totals"]
    assert (t["clicks_unique"], t["clicks_total"]) == (1, 3)  # the human ones only
    assert (t["bot_clicks_unique"], t["bot_clicks_total"]) == (1, 1)
    assert data["top_links"][0] == {
        "url": "https://x.test/a",
        "clicks_unique": 1,
        "clicks_total": 2,
    }
    assert view["milestones"]["clicked"] != view["milestones"]["bot_clicked"]
    assert (view["clicks_total"], view["bot_clicks_total"]) == (3, 1)
