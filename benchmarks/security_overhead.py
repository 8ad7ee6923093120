"""Cost of the security middleware per request, against the bare app in the same run.

    python benchmarks/security_overhead.py [--requests 20000]

Drives a minimal ASGI app directly (no sockets, no server) with a realistic ingest request,
once bare and once wrapped in ``SecurityMiddleware`` (rate limiting on), and prints the time
per request of each, the overhead, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from engagehub.security.middleware import SecurityMiddleware
from engagehub.settings import Settings

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


async def drive(app: Any, n: int) -> float:
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
        }
        await app(scope, receive, send)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    n = parser.parse_args().requests
    wrapped = SecurityMiddleware(bare, Settings(rate_limit_per_second=1e9, rate_limit_burst=10**9))
    asyncio.run(drive(wrapped, 1000))  # warm-up
    base = min(asyncio.run(drive(bare, n)) for _ in range(3))
    secured = min(asyncio.run(drive(wrapped, n)) for _ in range(3))
    print(f"bare app:            {base:8.2f} µs/request")
    print(f"with security layer: {secured:8.2f} µs/request")
    print(f"overhead:            {secured - base:8.2f} µs/request (ratio {secured / base:.2f}x)")


if __name__ == "__main__":
    main()
