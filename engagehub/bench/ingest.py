"""``engagehub bench ingest``: durable Segment-batch ingest against same-run ceilings.

Measures, in one run on one machine: engagehub's acknowledged events/s and latency with the
server in its own process, the load generator against a no-op ASGI endpoint (HTTP ceiling), and
a raw SQLite ``executemany`` of the same rows into the same schema (storage ceiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from engagehub.bench.loadgen import LoadResult, run_load
from engagehub.storage import events as log
from engagehub.storage.migrate import migrate
from engagehub.storage.sqlite import SQLiteConnection
from engagehub.timeutil import format_ts, now_ms
from engagehub.vendors import segment

WRITE_KEY = "bench-write-key-0001"
_MARK = "@@R@@"
_EVENTS = (
    ("Email Delivered", "email"),
    ("Email Opened", "email"),
    ("Email Link Clicked", "email"),
    ("SMS Delivered", "sms"),
    ("Email Processed", "email"),
    ("WhatsApp Message Read", "whatsapp"),
)


def batch_template(size: int, seed: int = 7) -> bytes:
    """A realistic batch body; ``@@R@@`` in every messageId is replaced per request."""
    rng = random.Random(seed)
    now = now_ms()
    events: list[dict[str, Any]] = []
    for i in range(size):
        name, channel = rng.choice(_EVENTS)
        user = f"user-{rng.randrange(50_000)}"
        campaign = f"cmp-{rng.randrange(1_000)}"
        props: dict[str, Any] = {
            "campaign_id": campaign,
            "campaign_name": f"Spring sale {campaign}",
            "message_id": f"msg-{user}-{campaign}",
            "email": f"{user}@example.com" if channel == "email" else None,
            "subject": "Your spring picks are here",
        }
        if name == "Email Link Clicked":
            props["url"] = f"https://shop.example.com/p/{rng.randrange(500)}?utm_source=email"
        events.append(
            {
                "type": "track",
                "event": name,
                "userId": user,
                "messageId": f"{_MARK}-{i}",
                "timestamp": format_ts(now - rng.randrange(60_000)),
                "properties": {k: v for k, v in props.items() if v is not None},
                "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
            }
        )
    body = {"batch": events, "sentAt": format_ts(now)}
    return orjson.dumps(body)


def serve_command(port: int, *extra: str) -> list[str]:
    """``engagehub serve`` on ``port`` in this interpreter, warnings only, plus ``extra``."""
    serve = [sys.executable, "-m", "engagehub", "serve", "--port", str(port)]
    return [*serve, "--log-level", "warning", *extra]


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until it answers, stop it on exit."""
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(cmd)}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError as exc:
                if "HTTP Error" in str(exc):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 30 s") from exc
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def peak_rss_mb(pid: int) -> float:
    """High-water resident memory of a process (VmHWM), in MB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load(port: int, template: bytes, concurrency: int, duration: float, run_id: str) -> LoadResult:
    headers = {"Authorization": "Basic " + _basic(WRITE_KEY)}

    def make_request(i: int) -> tuple[bytes, dict[str, str]]:
        return template.replace(_MARK.encode(), f"{run_id}{i}".encode()), headers

    return asyncio.run(
        run_load("127.0.0.1", port, "/v1/batch", make_request, concurrency, duration)
    )


def _basic(key: str) -> str:
    import base64

    return base64.b64encode(f"{key}:".encode()).decode()


def sqlite_ceiling(template: bytes, rows: int, per_txn: int, synchronous: str) -> float:
    """Rows/s of a raw ``executemany`` of the same parsed rows into the same schema."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = SQLiteConnection(str(Path(tmp) / "ceiling.db"), synchronous)
        migrate(conn)
        batches = []
        made = 0
        i = 0
        while made < rows:
            body = template.replace(_MARK.encode(), f"c{i}".encode())
            parsed = segment.parse_envelope(segment.decode(body, "batch"), now_ms())
            batches.append([log._row(1, now_ms(), ev) for ev in parsed.events])
            made += len(parsed.events)
            i += 1
        flat = [r for b in batches for r in b]
        sql = log._INSERT
        raw: sqlite3.Connection = conn.raw
        start = time.perf_counter()
        for n in range(0, len(flat), per_txn):
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(sql, flat[n : n + per_txn])
            raw.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
    return len(flat) / elapsed


def run(
    duration: float = 15.0,
    concurrency: int = 32,
    batch_size: int = 100,
    synchronous: str = "NORMAL",
    workers: int = 1,
) -> dict[str, Any]:
    """Run all three measurements; returns the figures."""
    template = batch_template(batch_size)
    figures: dict[str, Any] = {
        "batch_size": batch_size,
        "batch_bytes": len(template),
        "concurrency": concurrency,
        "duration_s": duration,
        "synchronous": synchronous,
        "workers": workers,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        env = {
            "ENGAGEHUB_DATABASE_URL": db_url,
            "ENGAGEHUB_ADMIN_TOKEN": "bench-admin-token",
            "ENGAGEHUB_SQLITE_SYNCHRONOUS": synchronous,
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "engagehub",
                "sources",
                "add",
                "bench",
                "--kind",
                "segment",
                "--write-key",
                WRITE_KEY,
            ],
            env={**os.environ, **env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        with server(serve_command(port, "--workers", str(workers)), env, port) as proc:
            _load(port, template, concurrency, 2.0, "w")  # warm-up, not counted
            before = _count(f"{tmp}/bench.db")
            result = _load(port, template, concurrency, duration, "r")
            stored = _count(f"{tmp}/bench.db") - before
            figures["peak_rss_mb"] = peak_rss_mb(proc.pid) if workers == 1 else float("nan")
    acked_events = result.statuses.get(200, 0) * batch_size
    figures.update(
        events_per_s=acked_events / result.elapsed_s,
        requests=result.requests,
        failures=result.failures,
        p50_ms=result.percentile(50),
        p99_ms=result.percentile(99),
        acked_events=acked_events,
        stored_events=stored,
    )
    noop_port = free_port()
    noop_cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "engagehub.bench.noop:app",
        "--port",
        str(noop_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with server(noop_cmd, {}, noop_port):
        noop = _load(noop_port, template, concurrency, min(duration, 8.0), "n")
    figures["noop_events_per_s"] = noop.requests * batch_size / noop.elapsed_s
    figures["sqlite_rows_per_s"] = sqlite_ceiling(template, 200_000, 2000, synchronous)
    figures["ratio_vs_noop"] = figures["events_per_s"] / figures["noop_events_per_s"]
    figures["ratio_vs_sqlite"] = figures["events_per_s"] / figures["sqlite_rows_per_s"]
    return figures


def _count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()
