"""``engagehub bench deliver``: webhook delivery events/s to a local receiver vs raw posts."""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any

import httpx
from rich.progress import Progress

from engagehub.bench.export import fill
from engagehub.bench.ingest import free_port, server
from engagehub.destinations import store
from engagehub.destinations.senders import webhook_body
from engagehub.destinations.service import DeliveryService
from engagehub.settings import Settings
from engagehub.storage import open_database


def run(count: int, batch: int) -> dict[str, Any]:
    """Deliver ``count`` events in batches to a no-op receiver; then post the same bodies raw."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "engagehub.bench.noop:app", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/hook"
    with tempfile.TemporaryDirectory(prefix="engagehub-bench-deliver-") as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        settings = Settings(database_url=db_url, allow_private_destinations=True)
        db = open_database(db_url, settings)
        with Progress(transient=True) as progress:
            fill(db, count, progress)
        with db.session() as conn:
            store.create(conn, "bench", "webhook", url, "whsec_c2VjcmV0", batch_size=batch, start=0)
        with server(cmd, {}, port):
            service = DeliveryService(settings)
            started = time.perf_counter()
            service.drain(db)
            deliver_s = time.perf_counter() - started
            service.close()
            with db.session() as conn:
                dest = store.get(conn, "bench")
                bodies = []
                for after in range(0, count, batch):
                    events = store.read_batch(conn, dest, after, min(count, after + batch))
                    bodies.append(webhook_body(dest, "raw", events))
            with httpx.Client() as client:
                started = time.perf_counter()
                for body in bodies:
                    client.post(url, content=body).raise_for_status()
                raw_s = time.perf_counter() - started
        db.close()
    rate = dest.delivered / deliver_s
    raw_rate = count / raw_s
    return {
        "events": dest.delivered,
        "batch": batch,
        "deliver_s": round(deliver_s, 3),
        "events_per_s": rate,
        "raw_httpx_events_per_s": raw_rate,
        "ratio_vs_raw_httpx": rate / raw_rate,
        "failures": dest.failures,
        "target_events_per_s": 10_000,
    }
