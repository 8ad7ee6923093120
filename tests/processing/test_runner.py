"""``serve`` derives in a child process: it catches up behind real HTTP ingest, and a child
killed with SIGKILL is restarted and resumes from its durable cursors."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson

from engagehub.bench.e2e import bodies, processor_cpu, processor_lag
from engagehub.bench.ingest import free_port, server
from engagehub.processing.runner import processor_children
from tests.waiting import eventually

KEY = "runner-test-write-key-01"


def _post(port: int, body: bytes) -> int:
    auth = base64.b64encode(f"{KEY}:".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/batch",
        data=body,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def _caught_up(port: int, timeout: float = 60) -> dict[str, int]:
    def caught_up() -> dict[str, int] | None:
        lag = processor_lag(port)
        return lag if lag and not any(lag.values()) else None

    found: dict[str, int] = eventually(caught_up, timeout, 0.1, what="processors caught up")
    return found


def test_processor_process_follows_ingest_and_survives_kill_9(tmp_path: Path) -> None:
    env = {
        "ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp_path}/runner.db",
        "ENGAGEHUB_ADMIN_TOKEN": "runner-admin-token",
        "ENGAGEHUB_PROCESSOR_MODE": "process",
    }
    full_env = {**os.environ, **env}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "engagehub",
            "sources",
            "add",
            "web",
            "--kind",
            "segment",
            "--write-key",
            KEY,
        ],
        env=full_env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    requests = bodies(1200, batch_size=100)
    port = free_port()
    cmd = [sys.executable, "-m", "engagehub", "serve", "--port", str(port)]
    with server([*cmd, "--log-level", "warning"], env, port) as proc:
        for body in requests[:6]:
            assert _post(port, body) == 200
        lag = _caught_up(port)
        assert {"log_index", "profiles", "consent", "analytics"} <= set(lag)
        # where the processor process's CPU went: every processor, and the rounds' own share
        before = processor_cpu(port, 1)
        assert set(lag) | {"(round)"} == set(before), before
        assert all(before[n] > 0 for n in ("log_index", "profiles", "analytics", "(round)"))
        children = processor_children(proc.pid)
        assert len(children) == 1, children  # derivation runs in its own process
        os.kill(children[0], signal.SIGKILL)
        for body in requests[6:]:
            assert _post(port, body) == 200  # ingest never waits for the processors
        _caught_up(port)
        after = processor_cpu(port, 1)  # a counter: the new process adds to the old one's
        assert all(after[n] >= before[n] for n in before), (before, after)
        assert after["log_index"] > before["log_index"]
        restarted = processor_children(proc.pid)
        assert len(restarted) == 1
        assert restarted[0] != children[0]
    status = subprocess.run(
        [sys.executable, "-m", "engagehub", "processors", "status", "--json"],
        env=full_env,
        check=True,
        capture_output=True,
    )
    report = orjson.loads(status.stdout)
    processors = [f for f in report["followers"] if f["kind"] == "processor"]
    assert processors
    assert all(f["lag"] == 0 and f["failing_seq"] is None for f in processors)
    assert report["head"] >= 1200


def test_serve_with_shards_derives_without_a_worker(tmp_path: Path) -> None:
    """ENGAGEHUB_PROCESSOR_SHARDS > 1 on ``serve`` alone: its processors make the shard
    cursors at start (as ``engagehub worker`` does), so every sharded processor catches up."""
    env = {
        "ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp_path}/shards.db",
        "ENGAGEHUB_ADMIN_TOKEN": "runner-admin-token",
        "ENGAGEHUB_PROCESSOR_MODE": "thread",
        "ENGAGEHUB_PROCESSOR_SHARDS": "2",
    }
    subprocess.run(
        [
            *(sys.executable, "-m", "engagehub", "sources", "add", "web"),
            "--kind",
            "segment",
            "--write-key",
            KEY,
        ],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    cmd = [sys.executable, "-m", "engagehub", "serve", "--port", str(port)]
    with server([*cmd, "--log-level", "warning"], env, port):
        for body in bodies(300, batch_size=100):
            assert _post(port, body) == 200
        lag = _caught_up(port, timeout=30)
    assert {"log_index", "analytics", "unmapped"} <= set(lag)
    with sqlite3.connect(tmp_path / "shards.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM processor_offsets")}
    conn.close()
    assert {"analytics#0/2", "analytics#1/2", "log_index#0/2", "log_index#1/2"} <= names
