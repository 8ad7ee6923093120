"""A bounded load generator for fault tests: threads posting Segment batches with unique ids,
recording what was attempted and what was acknowledged."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engagehub.bench.ingest import free_port
from engagehub.storage import events as log
from engagehub.storage import open_database
from tests.live import LiveServer


@dataclass
class Load:
    """Counts shared by the sender threads."""

    url: str
    key: str
    batch_size: int = 20
    attempted: list[list[str]] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def body(self, ids: list[str]) -> dict[str, Any]:
        batch = [
            {"type": "track", "event": "Email Delivered", "userId": "u", "messageId": m}
            for m in ids
        ]
        return {"batch": batch, "writeKey": self.key}

    def sender(self, n: int, deadline: float) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while not self.stop.is_set() and time.monotonic() < deadline:
                ids = [f"t{n}-{i}-{j}" for j in range(self.batch_size)]
                with self.lock:
                    self.attempted.append(ids)
                try:
                    r = http.post("/v1/batch", json=self.body(ids))
                except httpx.HTTPError:
                    with self.lock:
                        self.errors += 1
                    time.sleep(0.05)
                    i += 1
                    continue
                with self.lock:
                    self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        self.acked.update(ids)
                if r.status_code == 503:  # a polite client waits (Retry-After, capped)
                    time.sleep(min(float(r.headers.get("retry-after", 1)), 0.1))
                i += 1

    def start(self, threads: int = 4, seconds: float = 30) -> list[threading.Thread]:
        deadline = time.monotonic() + seconds
        started = [threading.Thread(target=self.sender, args=(n, deadline)) for n in range(threads)]
        for t in started:
            t.start()
        return started

    def wait_acked(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} acked: {self.statuses}"
            time.sleep(0.01)

    def retry_everything(self, url: str) -> None:
        """What clients do after an outage: resend every batch they are unsure about."""
        with httpx.Client(base_url=url, timeout=10) as http:
            for ids in self.attempted:
                r = http.post("/v1/batch", json=self.body(ids))
                assert r.status_code == 200, r.text


def stored_keys(database_url: str) -> list[str]:
    """Every dedup key in the log, duplicates included."""
    db = open_database(database_url)
    try:
        with db.session() as conn:
            return [e.dedup_key for e in log.read_range(conn, 0, 10**9)]
    finally:
        db.close()


@contextmanager
def logged_server(env: dict[str, str], log: Path, timeout: float = 30) -> Iterator[LiveServer]:
    """Like ``tests.live.live_server``, but the server's stderr goes to ``log``: an outage makes
    it log every refused request, which would fill (and block on) an undrained pipe."""
    port = free_port()
    full_env = {**os.environ, **env, "ENGAGEHUB_PORT": str(port), "ENGAGEHUB_HOST": "127.0.0.1"}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engagehub", "serve", "--log-level", "warning"],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.05)
        yield LiveServer(url, proc, full_env)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
