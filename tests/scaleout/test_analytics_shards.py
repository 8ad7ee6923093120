"""Analytics split by message id: shards and the cross-shard pass give the same derived tables as
one cursor and as ``engagehub reprocess``, in any interleaving, across reshards, and side by side
on PostgreSQL without deadlocks."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from engagehub.analytics import service, stats
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.errors import TransientError
from engagehub.model import IncomingEvent
from engagehub.processing import Unit, reset, run_round, run_until_caught_up
from engagehub.processing.log_index import LogIndex
from engagehub.processing.shards import layout, processor_positions, reshard, units
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from tests.analytics.helpers import T0, H, clear_log, ev, snapshot, source_id

CAMPAIGNS = ("c1", "c2")


def workload(seed: int, messages: int = 60) -> list[IncomingEvent]:
    """Sends, deliveries, opens, clicks and bounces in two campaigns over a few hours; a third of
    the messages are reported later by their provider id (a link event teaches it), and orders
    convert some recipients (goal events cross messages)."""
    rnd = random.Random(seed)
    out: list[IncomingEvent] = []
    for m in range(messages):
        mid, user, campaign = f"m{m}", f"u{m % 17}", CAMPAIGNS[m % 2]
        t = T0 + rnd.randrange(0, 6) * H + rnd.randrange(0, H)
        aliased = m % 3 == 0
        out.append(ev(f"s{m}", "Email Sent", t, mid, campaign, user=user))
        linked = {"provider_message_id": f"prov-{m}"} if aliased else {}
        late = f"prov-{m}" if aliased else mid
        out.append(ev(f"d{m}", "Email Delivered", t + 60_000, mid, campaign, user=user, **linked))
        if rnd.random() < 0.5:
            out.append(ev(f"o{m}", "Email Opened", t + H, late, None, user=user))
        if rnd.random() < 0.3:
            url = rnd.choice(["https://x.test/a", "https://x.test/b"])
            out.append(ev(f"k{m}", "Email Link Clicked", t + 2 * H, late, None, user=user, url=url))
        if rnd.random() < 0.15:
            reason = f"reason {m % 3}"
            out.append(ev(f"b{m}", "Email Bounced", t + 90_000, late, None, bounce_reason=reason))
    for i in range(12):
        user, coupon = f"u{rnd.randrange(17)}", rnd.choice(["SPRING", "X"])
        out.append(
            ev(f"g{i}", "Order Completed", T0 + rnd.randrange(0, 8) * H, user=user, coupon=coupon)
        )
    rnd.shuffle(out)  # vendors report late and out of order (provider ids before their link)
    return out


def observe(conn: Connection) -> Any:
    """Every analytics table a reader sees, and the campaigns' stats."""
    names = conn.all(
        "SELECT campaign_id, name, first_seen, last_seen FROM analytics_campaign_names"
    )
    aliases = conn.execute("SELECT * FROM analytics_message_aliases ORDER BY alias").fetchall()
    goals = conn.execute("SELECT COUNT(*) FROM analytics_goal_events").fetchall()
    return (
        snapshot(conn),
        sorted(map(str, names)),
        [tuple(a) for a in aliases],
        [tuple(g) for g in goals],
        [_stats(conn, c) for c in CAMPAIGNS],
    )


def _stats(conn: Connection, campaign: str) -> dict[str, Any]:
    """A campaign's stats, without when its goals were defined (a test re-adds one)."""
    found = stats.campaign_stats(conn, campaign)
    for goal in found.get("goals", []):
        goal.pop("created_at", None)
    return found


def _setup(conn: Connection) -> None:
    service.add_goal(conn, "c1", "Order Completed", "properties.coupon == 'SPRING'", "24h")
    service.add_goal(conn, "c2", "Order Completed", None, "3h")


def _append(conn: Connection, sid: int, events: list[IncomingEvent]) -> None:
    log.append(conn, [log.Batch(sid, T0, events)])


def one_cursor(conn: Connection, sid: int, events: list[IncomingEvent]) -> Any:
    """The reference: the same events through the unsharded processor."""
    _append(conn, sid, events)
    run_until_caught_up(conn, [LogIndex(), AnalyticsProcessor()], 50)
    return observe(conn)


def _again(conn: Connection) -> None:
    """Same database, empty log and analytics state: the same events can be appended anew."""
    clear_log(conn)
    conn.execute("DELETE FROM processor_offsets")
    with conn.transaction():
        AnalyticsProcessor().reset(conn)
    reset(conn, LogIndex())


def scrambled(conn: Connection, rnd: random.Random, work: list[Unit]) -> None:
    """Rounds of single units in a random order and random sizes until all reach the head."""
    head = log.head(conn)
    while True:
        behind = [u for u in work if _cursor(conn, u.name) < head]
        if not behind:
            return
        run_round(conn, [rnd.choice(behind)], rnd.randrange(1, 40))


def _cursor(conn: Connection, name: str) -> int:
    return int(conn.scalar("SELECT seq FROM processor_offsets WHERE name = ?", (name,)) or 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shards_in_any_interleaving_equal_one_cursor_and_reprocess(db: Database, seed: int) -> None:
    sid = source_id(db)
    analytics = AnalyticsProcessor()
    events = workload(seed)
    rnd = random.Random(seed)
    with db.session() as conn:
        _setup(conn)
        expected = one_cursor(conn, sid, events)
        assert expected[3] != [(0,)], "the workload has goal events"
        assert expected[2], "and provider-id links"
        _again(conn)
        assert reshard(conn, analytics, 3)
        work = units([analytics], 3)
        assert [u.name for u in work] == [
            "analytics#0/3",
            "analytics#1/3",
            "analytics#2/3",
            "analytics#cross/3",
        ]
        cut = rnd.randrange(len(events))
        _append(conn, sid, events[:cut])  # events keep arriving while shards are behind
        scrambled(conn, rnd, work)
        _append(conn, sid, events[cut:])
        scrambled(conn, rnd, work)
        assert observe(conn) == expected
        assert processor_positions(conn)["analytics"] == log.head(conn)
        # `engagehub reprocess analytics` of the sharded processor: same layout, same tables.
        reset(conn, analytics)
        run_until_caught_up(conn, [analytics])
        assert observe(conn) == expected
        names = {str(r[0]) for r in conn.execute("SELECT name FROM processor_offsets").fetchall()}
        assert {n for n in names if n.startswith("analytics")} == {u.name for u in work}


def test_resharding_mid_log_neither_loses_nor_repeats(db: Database) -> None:
    sid = source_id(db)
    analytics = AnalyticsProcessor()
    events = workload(7, messages=80)
    rnd = random.Random(7)
    with db.session() as conn:
        _setup(conn)
        expected = one_cursor(conn, sid, events)
        _again(conn)
        parts = [events[i::4] for i in range(4)]
        _append(conn, sid, parts[0])
        run_round(conn, [analytics], 25)  # unsharded, part way
        for count, part in zip((2, 3, 1), parts[1:], strict=True):
            assert reshard(conn, analytics, count, window=10)
            rows = dict(conn.execute("SELECT name, seq FROM processor_offsets").fetchall())
            at = {n: s for n, s in rows.items() if str(n).startswith("analytics")}
            assert len(set(at.values())) == 1, at  # every new cursor at one position
            if count > 1:
                assert f"analytics#cross/{count}" in at
            _append(conn, sid, part)
            work = layout(conn, [analytics])
            # leave each shard (and the pass) somewhere different before the next reshard
            for unit in work:
                if isinstance(unit, Unit):
                    run_round(conn, [unit], rnd.randrange(0, 60) + 1)
        run_until_caught_up(conn, [analytics])
        assert observe(conn) == expected


def test_a_goal_added_while_sharded_counts_each_goal_event_once(db: Database) -> None:
    """Goal edits lock every shard's cursor and backfill up to the cross pass's position."""
    sid = source_id(db)
    analytics = AnalyticsProcessor()
    events = workload(11)
    with db.session() as conn:
        _setup(conn)
        _append(conn, sid, events)
        run_until_caught_up(conn, [LogIndex(), analytics], 50)
        late = service.add_goal(conn, "c2", "Order Completed", "properties.coupon == 'X'", "48h")
        expected = observe(conn)
        service.remove_goal(conn, late["id"])
        _again(conn)
        reshard(conn, analytics, 2)
        work = units([analytics], 2)
        _append(conn, sid, events)
        for unit in work:  # the pass half way, one shard done, one not started
            run_round(conn, [unit], len(events) // 2 if unit.name.endswith("cross/2") else 0)
        run_round(conn, work[:1], len(events))
        service.add_goal(
            conn, "c2", "Order Completed", "properties.coupon == 'X'", "48h", goal_id=late["id"]
        )
        run_until_caught_up(conn, [analytics])
        assert observe(conn) == expected
        assert "analytics" not in {
            str(r[0]) for r in conn.execute("SELECT name FROM processor_offsets").fetchall()
        }, "a goal edit must not make an unsharded cursor beside the shards"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_workers_side_by_side_never_deadlock(db: Database) -> None:
    """Two workers' threads (a connection per unit, as ``engagehub worker`` runs them) fold 4
    shards and the pass while events arrive; every shard writes the same rollup rows."""
    sid = source_id(db)
    analytics = AnalyticsProcessor()
    events = workload(5, messages=400)
    with db.session() as conn:
        _setup(conn)
        expected = one_cursor(conn, sid, events)
        _again(conn)
        reshard(conn, analytics, 4)
    errors: list[BaseException] = []
    done = threading.Event()
    applied: dict[str, int] = {}

    def follow(unit: Unit) -> None:
        with db.session() as conn:
            while not done.is_set() or _cursor(conn, unit.name) < log.head(conn):
                try:
                    result = run_round(conn, [unit], 30, wait=False)
                except BaseException as exc:  # a deadlock is a TransientError here
                    errors.append(exc)
                    return
                if result.failed:
                    errors.extend(e for _, _, e in result.failed.values())
                    return
                applied[unit.name] = applied.get(unit.name, 0) + result.applied
                if not result.applied:
                    done.wait(0.01)

    threads = [
        threading.Thread(target=follow, args=(u,), daemon=True)
        for _worker in range(2)
        for u in units([analytics], 4)
    ]
    for t in threads:
        t.start()
    with db.session() as conn:
        for i in range(0, len(events), 150):
            _append(conn, sid, events[i : i + 150])
    done.set()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    with db.session() as conn:
        assert observe(conn) == expected
        assert processor_positions(conn)["analytics"] == log.head(conn)
    assert all(applied.get(u.name) for u in units([analytics], 4)), applied


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_cross_pass_keeps_shards_out_only_when_it_has_work(db: Database) -> None:
    """A shard mid-round holds the shard lock shared: the pass waits for it when its window has
    a goal event or a new provider id, and moves on beside it when it has neither."""
    from engagehub.processing.shards import hold

    sid = source_id(db)
    analytics = AnalyticsProcessor()
    with db.session() as conn:
        _setup(conn)
        reshard(conn, analytics, 2)
        cross = units([analytics], 2)[-1]
        plain = [
            ev("s1", "Email Sent", T0, "m1", "c1"),
            ev("d1", "Email Delivered", T0, "m1", "c1"),
        ]
        _append(conn, sid, plain)
    with db.session() as shard, db.session() as conn:
        conn.execute("SET lock_timeout = '2s'")

        def beside_a_shard(event: IncomingEvent | None) -> int:
            """The pass's next position, while a shard's round holds the lock shared."""
            with shard.transaction():
                hold(shard, analytics.name, exclusive=False)
                if event is not None:
                    _append(conn, sid, [event])
                return run_round(conn, [cross], 1).applied

        assert beside_a_shard(None) == 1  # a send: nothing for the pass, it does not wait
        assert beside_a_shard(None) == 1
        linking = ev("d2", "Email Delivered", T0, "m2", "c1", provider_message_id="prov-2")
        with pytest.raises(TransientError, match="lock timeout"):
            beside_a_shard(linking)  # a new provider id: the pass waits for the shard
        assert run_round(conn, [cross], 1).applied == 1  # alone, it learns the link
        assert conn.scalar("SELECT message_id FROM analytics_message_aliases") == "m2"
        known = ev("o2", "Email Opened", T0 + H, "m2", "c1", provider_message_id="prov-2")
        assert beside_a_shard(known) == 1  # a link it knows: no wait
        with pytest.raises(TransientError, match="lock timeout"):
            beside_a_shard(ev("g1", "Order Completed", T0 + H, user="u1", coupon="SPRING"))
