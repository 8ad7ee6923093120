"""``engagehub bench e2e``: events acknowledged AND derived, through real HTTP into ``serve``.

One run sends a fixed number of mixed engagement events (six per message: sent, processed,
delivered, two opens and a click; a few messages bounce instead) as Segment batches to
``engagehub serve`` on SQLite, and reports the acknowledged rate and the end-to-end rate: until
``GET /metrics`` shows every ``engagehub_lag_events{kind="processor"}`` at 0. The same-run
baseline is a raw SQLite ``executemany`` of the same rows into the same schema.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from engagehub.bench.ingest import WRITE_KEY, _basic, free_port, peak_rss_mb, server
from engagehub.bench.loadgen import run_load
from engagehub.processing.runner import processor_children
from engagehub.storage import events as log
from engagehub.storage.migrate import migrate
from engagehub.storage.sqlite import SQLiteConnection
from engagehub.timeutil import format_ts, now_ms
from engagehub.vendors import segment

_DELIVERED = (
    "Email Sent",
    "Email Processed",
    "Email Delivered",
    "Email Opened",
    "Email Opened",
    "Email Link Clicked",
)
# processor lag (positions summed over processors) below which the lag is read every 5 ms
_NEAR_END = 20_000
_BOUNCED = (
    "Email Sent",
    "Email Processed",
    "Email Deferred",
    "Email Soft Bounced",
    "Email Bounced",
    "Email Dropped",
)


def bodies(events: int, batch_size: int = 100, seed: int = 11, users: int = 20_000) -> list[bytes]:
    """Segment batch bodies holding ``events`` events, six per message, users repeating."""
    rng = random.Random(seed)
    now = now_ms()
    out: list[bytes] = []
    batch: list[dict[str, Any]] = []
    n = 0
    message = 0
    while n < events:
        message += 1
        user = f"user-{rng.randrange(users)}"
        campaign = f"cmp-{rng.randrange(200)}"
        names = _BOUNCED if rng.random() < 0.03 else _DELIVERED
        start = now - rng.randrange(3_600_000)
        for step, name in enumerate(names):
            if n >= events:
                break
            props: dict[str, Any] = {
                "campaign_id": campaign,
                "campaign_name": f"Spring sale {campaign}",
                "message_id": f"msg-{message}",
                "email": f"{user}@example.com",
                "subject": "Your spring picks are here",
            }
            if name == "Email Link Clicked":
                props["url"] = f"https://shop.example.com/p/{rng.randrange(500)}"
            if name == "Email Bounced":
                props["bounce_type"] = "hard"
            batch.append(
                {
                    "type": "track",
                    "event": name,
                    "userId": user,
                    "messageId": f"e2e-{message}-{step}",
                    "timestamp": format_ts(start + step * 1000),
                    "properties": props,
                    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
                }
            )
            n += 1
            if len(batch) == batch_size:
                out.append(orjson.dumps({"batch": batch, "sentAt": format_ts(now)}))
                batch = []
    if batch:
        out.append(orjson.dumps({"batch": batch, "sentAt": format_ts(now)}))
    return out


def sqlite_baseline(requests: list[bytes], synchronous: str, per_txn: int = 2000) -> float:
    """Rows/s of a raw ``executemany`` of the same parsed rows into the same schema."""
    received = now_ms()
    flat = [
        log._row(1, received, ev)
        for body in requests
        for ev in segment.parse_envelope(segment.decode(body, "batch"), received).events
    ]
    with tempfile.TemporaryDirectory() as tmp:
        conn = SQLiteConnection(str(Path(tmp) / "baseline.db"), synchronous)
        migrate(conn)
        raw: sqlite3.Connection = conn.raw
        start = time.perf_counter()
        for n in range(0, len(flat), per_txn):
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(log._INSERT, flat[n : n + per_txn])
            raw.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
    return len(flat) / elapsed


def _series(port: int, prefix: str) -> dict[str, float]:
    """Values of the ``/metrics`` lines starting with ``prefix``, by their ``name`` label."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name = line.split('name="', 1)[1].split('"', 1)[0]
            found[name] = float(line.rsplit(" ", 1)[1])
    return found


def processor_lag(port: int) -> dict[str, int]:
    """``engagehub_lag_events{kind="processor"}`` per processor, from ``GET /metrics``."""
    return {n: int(v) for n, v in _series(port, 'engagehub_lag_events{kind="processor"').items()}


def processor_cpu(port: int, events: int) -> dict[str, float]:
    """CPU microseconds per event of each processor (``engagehub_processor_cpu_seconds``;
    ``(round)`` = the rounds' own statements and commits), largest first."""
    cpu = _series(port, "engagehub_processor_cpu_seconds_total{")
    per_event = {n: round(s * 1e6 / max(1, events), 2) for n, s in cpu.items()}
    return dict(sorted(per_event.items(), key=lambda item: -item[1]))


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _cpu_now(pid: int) -> dict[str, float]:
    """CPU seconds of the server and of its processor process so far (start-up included)."""
    out = {"server": _cpu(pid)}
    for child in processor_children(pid):
        out["processor"] = _cpu(child)
    return out


def _rss(pid: int, at_start: dict[str, float] | None = None) -> dict[str, float]:
    """Peak RSS (MB) and CPU seconds (user + system) of the server and of its processor
    process: CPU per event is the figure a loaded machine disturbs least. ``*_load_cpu_s``
    leave out what each process spent before the load began (imports, migrations, start-up)."""
    start = at_start or {}
    out = {"server_peak_rss_mb": peak_rss_mb(pid), "server_cpu_s": _cpu(pid)}
    out["server_load_cpu_s"] = out["server_cpu_s"] - start.get("server", 0.0)
    for child in processor_children(pid):
        out["processor_peak_rss_mb"] = peak_rss_mb(child)
        out["processor_cpu_s"] = _cpu(child)
        out["processor_load_cpu_s"] = out["processor_cpu_s"] - start.get("processor", 0.0)
    return out


def _poll_s(lag: int) -> float:
    """Seconds until the next lag read: 5 ms near the end, so ``tail_s`` is that exact, and
    50 ms while a long catch-up is ahead (each read is a ``/metrics`` request)."""
    return 0.005 if lag <= _NEAR_END else 0.05


def one_run(
    requests: list[bytes], synchronous: str, concurrency: int, timeout: float
) -> dict[str, Any]:
    """Serve on a fresh SQLite file, send everything, wait for lag 0; the figures."""
    events = sum(body.count(b'"messageId"') for body in requests)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp}/e2e.db",
            "ENGAGEHUB_ADMIN_TOKEN": "bench-admin-token",
            "ENGAGEHUB_SQLITE_SYNCHRONOUS": synchronous,
        }
        add = [sys.executable, "-m", "engagehub", "sources", "add", "bench", "--kind", "segment"]
        subprocess.run(
            [*add, "--write-key", WRITE_KEY],
            env={**os.environ, **env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        cmd = [sys.executable, "-m", "engagehub", "serve", "--port", str(port)]
        headers = {"Authorization": "Basic " + _basic(WRITE_KEY)}
        with server([*cmd, "--log-level", "warning"], env, port) as proc:
            time.sleep(1.0)  # the processor process starts next to the server
            at_start = _cpu_now(proc.pid)
            start = time.perf_counter()
            result = asyncio.run(
                run_load(
                    "127.0.0.1",
                    port,
                    "/v1/batch",
                    lambda i: (requests[i - 1], headers),  # indexes start at 1
                    concurrency,
                    timeout,
                    max_requests=len(requests),
                )
            )
            acked_s = time.perf_counter() - start
            lag = processor_lag(port)
            lag_at_ack = sum(lag.values())
            while time.perf_counter() - start < timeout:
                if lag and not any(lag.values()):
                    break
                time.sleep(_poll_s(sum(lag.values())))
                lag = processor_lag(port)
            derived_s = time.perf_counter() - start
            rss = _rss(proc.pid, at_start)
            breakdown = processor_cpu(port, events)
    acked = result.statuses.get(200, 0) * (events // max(1, len(requests)))
    return {
        "synchronous": synchronous,
        "events": events,
        "acked_events": acked,
        "failures": result.failures,
        "acked_per_s": events / acked_s,
        "end_to_end_per_s": events / derived_s,
        "acked_s": acked_s,
        "end_to_end_s": derived_s,
        "lag_left": sum(lag.values()),
        "lag_at_ack": lag_at_ack,
        "tail_s": derived_s - acked_s,
        "p99_ms": result.percentile(99),
        **rss,
        "server_load_us_per_event": 1e6 * rss["server_load_cpu_s"] / events,
        "processor_cpu_us_per_event": breakdown,
    }


def run(
    events: int = 200_000,
    synchronous: tuple[str, ...] = ("NORMAL", "FULL"),
    concurrency: int = 32,
    batch_size: int = 100,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Every requested synchronous mode against its same-run raw SQLite baseline."""
    requests = bodies(events, batch_size)
    figures: dict[str, Any] = {"events": events, "batch_size": batch_size, "cpus": os.cpu_count()}
    for mode in synchronous:
        figures[mode.lower()] = run_mode = one_run(requests, mode, concurrency, timeout)
        baseline = sqlite_baseline(requests, mode)
        run_mode["sqlite_executemany_rows_per_s"] = baseline
        run_mode["acked_ratio_vs_sqlite"] = run_mode["acked_per_s"] / baseline
        run_mode["end_to_end_ratio_vs_sqlite"] = run_mode["end_to_end_per_s"] / baseline
    return figures
