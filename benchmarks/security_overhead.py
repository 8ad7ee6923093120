"""Cost of the security middleware per request, against the bare app in the same run.

    python benchmarks/security_overhead.py [--requests 20000]

Drives a minimal ASGI app directly (no sockets, no server) with a realistic ingest request,
once bare and once wrapped in ``SecurityMiddleware`` (rate limiting on, the write key verified
against a real Hub's source cache on a temporary SQLite file), and prints the time per request
of each, the overhead, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from types import SimpleNamespace
from typing import Any

from engagehub.hub import Hub
from engagehub.security.middleware import SecurityMiddleware
from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store

WRITE_KEY = "wk-0123456789"  # the Basic user name below

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"content-length", b"2048"),
    (b"authorization", b"Basic d2stMDEyMzQ1Njc4OTphYmNkZWY6"),
    (b"user-agent", b"analytics-python/2.3"),
    (b"accept-encoding", b"gzip"),
]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"success":true}'})


def hub_with_source(settings: Settings) -> Hub:
    """A Hub on a fresh SQLite file with the benchmark's write key, its lookup cached."""
    db = open_database(settings.database_url, settings)
    with db.session() as conn:
        migrate(conn)
        source_store.create(conn, "bench", "segment", write_key=WRITE_KEY)
    hub = Hub(settings, db)
    asyncio.run(hub.find_write_key(WRITE_KEY))
    return hub


async def drive(app: Any, n: int, owner: Any = None) -> float:
    body = {"type": "http.request", "body": b"x" * 2048, "more_body": False}

    async def receive() -> dict[str, Any]:
        return body

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/batch",
            "headers": HEADERS,
            "query_string": b"",
            "scheme": "http",
            "client": ("127.0.0.1", 5000),
            "app": owner,
        }
        await app(scope, receive, send)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    n = parser.parse_args().requests
    folder = tempfile.mkdtemp(prefix="engagehub-secbench-")
    settings = Settings(
        database_url=f"sqlite:///{folder}/bench.db",
        rate_limit_per_second=1e9,
        rate_limit_burst=10**9,
    )
    owner = SimpleNamespace(state=SimpleNamespace(hub=hub_with_source(settings)))
    wrapped = SecurityMiddleware(bare, settings)
    asyncio.run(drive(wrapped, 1000, owner))  # warm-up
    base = min(asyncio.run(drive(bare, n, owner)) for _ in range(3))
    secured = min(asyncio.run(drive(wrapped, n, owner)) for _ in range(3))
    print(f"bare app:            {base:8.2f} µs/request")
    print(f"with security layer: {secured:8.2f} µs/request")
    print(f"overhead:            {secured - base:8.2f} µs/request (ratio {secured / base:.2f}x)")


if __name__ == "__main__":
    main()
