"""``engagehub bench analytics``: ingest with rollups on, then campaign stats latency vs DuckDB.

One run, one machine: realistic message events (sends, deliveries, opens, machine opens,
clicks, bounces, unsubscribes, orders for conversion goals) across many campaigns are appended
to a fresh SQLite log in batches; the append, the core log index and the analytics processor
are timed separately (baselines: the append alone, and the append plus the log index). Then
random campaigns and hour-aligned ranges are asked for stats from rollups, and the same numbers
are computed by DuckDB over a Parquet copy of the events written with pyarrow; both answers are
compared so the speed-up is of equal results.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engagehub.analytics import service, stats
from engagehub.analytics.lifecycle import HOUR_MS
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.model import IncomingEvent
from engagehub.processing import Processor, run_until_caught_up
from engagehub.processing.log_index import LogIndex
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 24 * HOUR_MS
LINKS = [f"https://shop.example/p/{i}" for i in range(12)]
REASONS = ["550 5.1.1 user unknown", "552 mailbox full", "554 blocked", "421 try later"]
_COMPARED = ("sent", "delivered", "opens_unique", "opens_total", "clicks_unique", "bounced")


def _message(
    rng: random.Random, campaign: int, n: int, t0: int, goal: bool
) -> list[tuple[str, int, str, dict[str, Any]]]:
    """(event, time, user, props) of one message's story."""
    user = f"user-{rng.randrange(200_000)}"
    t = t0 + rng.randrange(28 * DAY_MS)
    props: dict[str, Any] = {"variation_id": "AB"[n % 2], "campaign_name": f"Campaign {campaign}"}
    out: list[tuple[str, int, str, dict[str, Any]]] = [("Email Sent", t, user, props)]
    if rng.random() < 0.04:
        out.append(("Email Bounced", t + 2000, user, {"bounce_reason": rng.choice(REASONS)}))
        return out
    delivered = t + rng.randrange(1000, 60_000)
    out.append(("Email Delivered", delivered, user, {}))
    if rng.random() < 0.15:
        out.append(("Email Machine Opened", delivered + 5000, user, {"machine_open": True}))
    if rng.random() < 0.35:
        opened = delivered + rng.randrange(60_000, 2 * DAY_MS)
        for k in range(1 + int(rng.random() < 0.3)):
            out.append(("Email Opened", opened + k * 3_600_000, user, {}))
        if rng.random() < 0.3:
            out.append(("Email Link Clicked", opened + 30_000, user, {"url": rng.choice(LINKS)}))
            if goal and rng.random() < 0.4:
                order = {"coupon": "SPRING", "total": rng.randrange(10, 200)}
                out.append(("Order Completed", opened + rng.randrange(HOUR_MS), user, order))
    if rng.random() < 0.005:
        out.append(("Email Unsubscribed", delivered + DAY_MS, user, {}))
    return out


def generate(total: int, campaigns: int, seed: int = 11) -> Iterator[IncomingEvent]:
    """About ``total`` events; messages of random campaigns over four weeks."""
    rng = random.Random(seed)
    produced = 0
    n = 0
    while produced < total:
        campaign = rng.randrange(campaigns)
        for name, t, user, props in _message(rng, campaign, n, START, campaign % 10 == 0):
            mid = f"msg-{n}" if name != "Order Completed" else None
            yield IncomingEvent(
                dedup_key=f"{n}:{name}:{t}",
                event_time=t,
                raw="{}",
                vendor_event=name,
                event=None if mid is None else name,
                channel=None if mid is None else "email",
                user_id=user,
                message_id=mid,
                campaign_id=None if mid is None else f"cmp-{campaign}",
                properties=props,
            )
            produced += 1
        n += 1


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    events: int, campaigns: int, queries: int, batch: int, progress: Callable[[int], None]
) -> dict[str, Any]:
    """Every figure of the benchmark."""
    try:
        import duckdb
    except ImportError:
        raise SystemExit(
            "bench analytics compares with DuckDB: pip install 'engagehub[bench]'"
        ) from None
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = Path(tempfile.mkdtemp(prefix="engagehub-bench-analytics-"))
    url = f"sqlite:///{tmp}/bench.db"
    db = open_database(url, Settings(database_url=url))
    processors: list[Processor] = [LogIndex(), AnalyticsProcessor()]
    columns: dict[str, list[Any]] = {
        k: []
        for k in ("event", "message_id", "campaign_id", "user_id", "event_time", "variation", "url")
    }
    append_s = index_s = process_s = 0.0
    stored = 0
    with db.session() as conn:
        migrate(conn)
        source = source_store.create(conn, "bench", "segment")[0].id
        for c in range(0, campaigns, 10):
            service.add_goal(
                conn, f"cmp-{c}", "Order Completed", "properties.coupon == 'SPRING'", "72h"
            )
        pending: list[IncomingEvent] = []

        def flush() -> None:
            nonlocal append_s, index_s, process_s, stored
            chunk = list(pending)
            pending.clear()
            append_s += _timed(lambda: log.append(conn, [log.Batch(source, START, chunk)]))
            index_s += _timed(lambda: run_until_caught_up(conn, processors[:1], 5000))
            process_s += _timed(lambda: run_until_caught_up(conn, processors[1:], 5000))
            stored += len(chunk)
            progress(len(chunk))

        for ev in generate(events, campaigns):
            pending.append(ev)
            columns["event"].append(ev.vendor_event)
            columns["message_id"].append(ev.message_id)
            columns["campaign_id"].append(ev.campaign_id)
            columns["user_id"].append(ev.user_id)
            columns["event_time"].append(ev.event_time)
            columns["variation"].append(ev.properties.get("variation_id"))
            columns["url"].append(ev.properties.get("url"))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        rollup_rows = int(conn.scalar("SELECT COUNT(*) FROM analytics_rollups"))
        parquet = tmp / "events.parquet"
        export_s = _timed(lambda: pq.write_table(pa.table(columns), parquet))
        rng = random.Random(5)
        asks: list[tuple[str, int | None, int | None]] = []
        for _ in range(queries):
            name = f"cmp-{rng.randrange(campaigns)}"
            lo = START + rng.randrange(28) * DAY_MS
            hi = lo + rng.choice([1, 6, 24, 7 * 24, 30 * 24]) * HOUR_MS
            asks.append((name, lo, hi) if rng.random() < 0.8 else (name, None, None))
        ours: list[float] = []
        answers = []
        for name, since, until in asks:
            t = time.perf_counter()
            answers.append(stats.campaign_stats(conn, name, since, until))
            ours.append((time.perf_counter() - t) * 1000)
    db.close()
    duck = duckdb.connect()
    theirs: list[float] = []
    mismatches = 0
    for (name, since, until), ours_answer in zip(asks, answers, strict=True):
        t = time.perf_counter()
        got = _duck_stats(duck, str(parquet), name, since, until)
        theirs.append((time.perf_counter() - t) * 1000)
        mismatches += any(got[k] != ours_answer["totals"][k] for k in _COMPARED)
    duck.close()
    total_s = append_s + index_s + process_s
    return {
        "events": stored,
        "campaigns": campaigns,
        "append_only_events_per_s": stored / append_s,
        "append_and_log_index_events_per_s": stored / (append_s + index_s),
        "with_rollups_events_per_s": stored / total_s,
        "analytics_processor_events_per_s": stored / process_s,
        "rollups_cost_ratio": total_s / (append_s + index_s),
        "rollup_rows": rollup_rows,
        "parquet_export_s": export_s,
        "stats_queries": queries,
        "stats_p50_ms": statistics.median(ours),
        "stats_p95_ms": _pct(ours, 0.95),
        "stats_max_ms": max(ours),
        "duckdb_p50_ms": statistics.median(theirs),
        "duckdb_p95_ms": _pct(theirs, 0.95),
        "p95_speedup_vs_duckdb": _pct(theirs, 0.95) / _pct(ours, 0.95),
        "answers_differing_from_duckdb": mismatches,
    }


def _duck_stats(
    duck: Any, parquet: str, campaign: str, start: int | None, end: int | None
) -> dict[str, int]:
    """The same totals from raw events: per-message first times, then counted in the range."""
    lo = start if start is not None else -(2**62)
    hi = end if end is not None else 2**62
    sql = f"""
        WITH ev AS (SELECT * FROM read_parquet('{parquet}') WHERE campaign_id = $c),
        m AS (
          SELECT message_id,
            min(event_time) FILTER (WHERE event = 'Email Sent') AS sent,
            min(event_time) FILTER (WHERE event = 'Email Delivered') AS delivered,
            min(event_time) FILTER (WHERE event = 'Email Opened') AS opened,
            min(event_time) FILTER (WHERE event = 'Email Link Clicked') AS clicked,
            min(event_time) FILTER (WHERE event = 'Email Bounced') AS bounced
          FROM ev GROUP BY message_id)
        SELECT
          (SELECT count(*) FROM m WHERE sent >= $lo AND sent < $hi),
          (SELECT count(*) FROM m WHERE delivered >= $lo AND delivered < $hi),
          (SELECT count(*) FROM m WHERE opened >= $lo AND opened < $hi),
          (SELECT count(*) FROM ev WHERE event = 'Email Opened'
             AND event_time >= $lo AND event_time < $hi),
          (SELECT count(*) FROM m WHERE clicked >= $lo AND clicked < $hi),
          (SELECT count(*) FROM m WHERE bounced >= $lo AND bounced < $hi)
    """
    row = duck.execute(sql, {"c": campaign, "lo": lo, "hi": hi}).fetchone()
    return dict(zip(_COMPARED, (int(v) for v in row), strict=True))
