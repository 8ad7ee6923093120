"""``engagehub bench analytics``: derive analytics from a big log, then stats latency vs DuckDB.

One run, one machine: realistic message events (sends, deliveries, opens, machine opens,
clicks, bounces, unsubscribes, orders for conversion goals) across many campaigns are
bulk-loaded into a fresh SQLite log (ADBC) and written to Parquet for DuckDB; the analytics
processor then catches up with the whole log in windows, timed against a same-run baseline (one
plain ``GROUP BY message_id`` over the log). Then random campaigns and hour-aligned ranges are
asked for stats from rollups, and the same numbers are computed by DuckDB over the Parquet
copy; both answers are compared so the speed-up is of equal results.
"""

from __future__ import annotations

import contextlib
import queue
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from engagehub.analytics import service, stats
from engagehub.analytics.lifecycle import HOUR_MS
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.model import event_id_for
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 24 * HOUR_MS
LINKS = [f"https://shop.example/p/{i}" for i in range(12)]
REASONS = ["550 5.1.1 user unknown", "552 mailbox full", "554 blocked", "421 try later"]
_RAW_GROUP_BY = (
    "SELECT COUNT(*) FROM (SELECT message_id, MIN(event_time), MAX(event_time), COUNT(*) "
    "FROM events GROUP BY message_id) x"
)
"""The same-run baseline: one plain pass over the log by message."""
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


_PROPS_CACHE: dict[tuple[tuple[str, Any], ...], str] = {}


def _props(props: dict[str, Any]) -> str:
    """Canonical JSON of a story's properties (few distinct values: cached)."""
    key = tuple(sorted(props.items()))
    text = _PROPS_CACHE.get(key)
    if text is None:
        text = _PROPS_CACHE[key] = log.dump_properties(props)
    return text


LOG_COLUMNS = (
    "event_id", "source_id", "dedup_key", "type", "vendor_event", "event", "channel",
    "user_id", "message_id", "campaign_id", "event_time", "received_at", "properties", "raw",
)  # fmt: skip
_TYPES = {"source_id": pa.int64(), "event_time": pa.int64(), "received_at": pa.int64()}


def generate(
    total: int, campaigns: int, source: int, chunk: int, seed: int = 11
) -> Iterator[pa.Table]:
    """About ``total`` log rows as Arrow tables of ``chunk`` rows; messages of random campaigns
    over four weeks, each message's story in one piece (as a sender logs it)."""
    rng = random.Random(seed)
    produced = n = 0
    cols: dict[str, list[Any]] = {c: [] for c in LOG_COLUMNS}
    while produced < total:
        campaign = rng.randrange(campaigns)
        for name, t, user, props in _message(rng, campaign, n, START, campaign % 10 == 0):
            mid = f"msg-{n}" if name != "Order Completed" else None
            key = f"{n}:{name}:{t}"
            cols["event_id"].append(event_id_for(source, key))
            cols["source_id"].append(source)
            cols["dedup_key"].append(key)
            cols["type"].append("track")
            cols["vendor_event"].append(name)
            cols["event"].append(None if mid is None else name)
            cols["channel"].append(None if mid is None else "email")
            cols["user_id"].append(user)
            cols["message_id"].append(mid)
            cols["campaign_id"].append(None if mid is None else f"cmp-{campaign}")
            cols["event_time"].append(t)
            cols["received_at"].append(START)
            cols["properties"].append(_props(props))
            cols["raw"].append("{}")
            produced += 1
        n += 1
        if len(cols["event_id"]) >= chunk or produced >= total:
            yield pa.table({c: pa.array(v, _TYPES.get(c, pa.string())) for c, v in cols.items()})
            cols = {c: [] for c in LOG_COLUMNS}


def _ahead(chunks: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """``chunks`` generated on a thread, ``depth`` ahead: Python makes the next chunk while
    the drivers (which release the GIL) write this one."""
    ready: queue.Queue[pa.Table | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                ready.put(chunk)
            ready.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(exc)

    thread = threading.Thread(target=produce, name="bench-generate", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        thread.join()


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _duck_columns(table: pa.Table) -> pa.Table:
    """What DuckDB gets: the compared columns, variation and URL taken from the properties
    (each distinct properties text decoded once: a story's properties repeat)."""
    decoded: dict[str, tuple[Any, Any]] = {}
    picked = []
    for text in table.column("properties").to_pylist():
        got = decoded.get(text)
        if got is None:
            p = orjson.loads(text)
            got = decoded[text] = (p.get("variation_id"), p.get("url"))
        picked.append(got)
    return pa.table(
        {
            "event": table.column("vendor_event"),
            "message_id": table.column("message_id"),
            "campaign_id": table.column("campaign_id"),
            "user_id": table.column("user_id"),
            "event_time": table.column("event_time"),
            "variation": pa.array([v for v, _ in picked], pa.string()),
            "url": pa.array([u for _, u in picked], pa.string()),
        }
    )


def run(
    events: int,
    campaigns: int,
    queries: int,
    batch: int,
    progress: Callable[[int], None],
    window: int = 100_000,
) -> dict[str, Any]:
    """Every figure of the benchmark."""
    import adbc_driver_sqlite.dbapi as sqlite_adbc

    try:
        import duckdb
    except ImportError:
        raise SystemExit(
            "bench analytics compares with DuckDB: pip install 'engagehub[bench]'"
        ) from None
    import pyarrow.parquet as pq

    began, began_cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="engagehub-bench-analytics-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db = open_database(url, Settings(database_url=url))
        with db.session() as conn:
            migrate(conn)
            source = source_store.create(conn, "bench", "segment")[0].id
            for c in range(0, campaigns, 10):
                service.add_goal(
                    conn, f"cmp-{c}", "Order Completed", "properties.coupon == 'SPRING'", "72h"
                )
        # No sqlite3 connection may stay open while ADBC's own SQLite copy writes the file: its
        # close would drop their POSIX locks (storage.arrow's docstring).
        db.close()
        parquet = Path(tmp) / "events.parquet"
        # Load: the log bulk-loaded (a fresh log, keys unique by construction) through ADBC,
        # and the same rows for DuckDB; the derivation below reads the log like a catch-up.
        load_s = 0.0
        stored = 0
        adbc = sqlite_adbc.connect(f"{tmp}/bench.db")
        writer: pq.ParquetWriter | None = None
        try:
            with adbc.cursor() as cur:
                for chunk in _ahead(generate(events, campaigns, source, batch)):
                    started = time.perf_counter()
                    cur.adbc_ingest("events", chunk, mode="append")
                    adbc.commit()
                    load_s += time.perf_counter() - started
                    duck_part = _duck_columns(chunk)
                    if writer is None:
                        writer = pq.ParquetWriter(parquet, duck_part.schema)
                    writer.write_table(duck_part)
                    stored += chunk.num_rows
                    progress(chunk.num_rows)
        finally:
            adbc.close()
            if writer is not None:
                writer.close()
        load_cpu_s = time.process_time() - began_cpu  # generating, loading, the Parquet copy
        rng = random.Random(5)
        asks: list[tuple[str, int | None, int | None]] = []
        for _ in range(queries):
            name = f"cmp-{rng.randrange(campaigns)}"
            lo = START + rng.randrange(28) * DAY_MS
            hi = lo + rng.choice([1, 6, 24, 7 * 24, 30 * 24]) * HOUR_MS
            asks.append((name, lo, hi) if rng.random() < 0.8 else (name, None, None))
        # DuckDB needs only the Parquet copy: it answers on its own thread (one DuckDB thread:
        # the machine's other core) while the fold runs, and is waited for before our stats
        # are timed, so neither answer's latency carries the other's work.
        duck = _Beside(lambda: _duck_answers(duckdb, parquet, asks))
        try:
            db = open_database(url, Settings(database_url=url))
            with db.session() as conn:
                baseline_s = _timed(lambda: conn.scalar(_RAW_GROUP_BY))
                fold_cpu = time.thread_time()  # this thread's: DuckDB's thread runs beside it
                process_s = _timed(
                    lambda: run_until_caught_up(conn, [AnalyticsProcessor()], window)
                )
                fold_cpu = time.thread_time() - fold_cpu
                rollup_rows = int(conn.scalar("SELECT COUNT(*) FROM analytics_rollups"))
                detail_rows = int(conn.scalar("SELECT COUNT(*) FROM analytics_rollup_details"))
                messages = int(conn.scalar("SELECT COUNT(*) FROM analytics_messages"))
                duck_load_s, theirs, their_answers, duck_cpu = duck.result()
                ours: list[float] = []
                ours_cpu: list[float] = []  # wall time includes waits for a core on a busy machine
                answers = []
                for name, since, until in asks:
                    t, cpu = time.perf_counter(), time.thread_time()
                    answers.append(stats.campaign_stats(conn, name, since, until))
                    ours.append((time.perf_counter() - t) * 1000)
                    ours_cpu.append((time.thread_time() - cpu) * 1000)
            db.close()
        finally:
            duck.wait()  # also when the fold failed: the thread reads files in tmp
        mismatches = sum(
            any(got[k] != ours_answer["totals"][k] for k in _COMPARED)
            for got, ours_answer in zip(their_answers, answers, strict=True)
        )
    return {
        # Wall time carries the waits for a core on a shared machine; CPU seconds are the work.
        "whole_run_s": time.perf_counter() - began,
        "whole_run_cpu_s": time.process_time() - began_cpu,
        "load_cpu_s": load_cpu_s,
        "duckdb_cpu_s": duck_cpu,
        "events": stored,
        "campaigns": campaigns,
        "messages": messages,
        "load_events_per_s": stored / load_s,
        "analytics_processor_s": process_s,
        "analytics_processor_events_per_s": stored / process_s,
        "analytics_processor_cpu_s": fold_cpu,
        "analytics_processor_events_per_cpu_s": stored / fold_cpu,
        "raw_group_by_s": baseline_s,
        "processor_vs_raw_group_by": process_s / baseline_s,
        "rollup_rows": rollup_rows,
        "rollup_detail_rows": detail_rows,
        "stats_queries": queries,
        "stats_p50_ms": statistics.median(ours),
        "stats_p95_ms": _pct(ours, 0.95),
        "stats_max_ms": max(ours),
        "stats_cpu_p50_ms": statistics.median(ours_cpu),
        "stats_cpu_p95_ms": _pct(ours_cpu, 0.95),
        "duckdb_load_s": duck_load_s,
        "duckdb_p50_ms": statistics.median(theirs),
        "duckdb_p95_ms": _pct(theirs, 0.95),
        "p95_speedup_vs_duckdb": _pct(theirs, 0.95) / _pct(ours, 0.95),
        "answers_differing_from_duckdb": mismatches,
    }


class _Beside:
    """``fn()`` on its own thread from now on; ``result()`` waits for it (raising its error)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._out: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(fn,), name="bench-duckdb")
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._out.append(fn())
        except BaseException as exc:  # handed to result()
            self._out.append(exc)

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self.wait()
        if isinstance(self._out[0], BaseException):
            raise self._out[0]
        return self._out[0]


def _duck_answers(
    duckdb: Any, parquet: Path, asks: list[tuple[str, int | None, int | None]]
) -> tuple[float, list[float], list[dict[str, int]], float]:
    """DuckDB's load time, per-question times and answers, and its CPU seconds (one thread)."""
    cpu = time.thread_time()
    duck = duckdb.connect(config={"threads": 1})
    try:
        # DuckDB at its best: the Parquet copy loaded once into its own table, clustered by
        # campaign (its zone maps then skip all but a campaign's row groups); at 10M events a
        # scan of the whole file per question took seconds and dominated the run.
        load_s = _timed(
            lambda: duck.execute(
                f"CREATE TABLE log_copy AS SELECT * FROM read_parquet('{parquet}') "
                "ORDER BY campaign_id, message_id"
            )
        )
        times: list[float] = []
        answers = []
        for name, since, until in asks:
            t = time.perf_counter()
            answers.append(_duck_stats(duck, name, since, until))
            times.append((time.perf_counter() - t) * 1000)
    finally:
        duck.close()
    return load_s, times, answers, time.thread_time() - cpu


def _duck_stats(duck: Any, campaign: str, start: int | None, end: int | None) -> dict[str, int]:
    """The same totals from raw events: per-message first times, then counted in the range."""
    lo = start if start is not None else -(2**62)
    hi = end if end is not None else 2**62
    sql = """
        WITH ev AS (SELECT * FROM log_copy WHERE campaign_id = $c),
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
