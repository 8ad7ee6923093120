"""A bounded load generator for fault tests: threads posting Segment batches with unique ids,
recording what was attempted and what was acknowledged."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from engagehub.storage import events as log
from engagehub.storage import open_database
from tests.waiting import eventually


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
        eventually(
            lambda: len(self.acked) >= count,
            timeout,
            0.01,
            what=f"{count} acknowledged (statuses {self.statuses})",
        )

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
