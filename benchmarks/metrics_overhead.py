"""What metrics cost an ingest request: the refusal-counting middleware and the append counter.

    python benchmarks/metrics_overhead.py [--requests 20000]

Drives an ASGI app that answers like an ingest route, bare and wrapped in ``RefusalCounter``
(the baseline is measured in the same run), on an accepted reply and on a partly rejected one,
then times ``record_append``. Prints requests/s and the ratio wrapped/bare.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from engagehub.ops.api import RefusalCounter
from engagehub.ops.metrics import record_append

Scope = dict[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]


def ingest_like(body: bytes, status: int) -> ASGI:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def drive(app: ASGI, n: int) -> float:
    scope = {"type": "http", "path": "/v1/batch", "method": "POST"}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        await app(scope, receive, send)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    n = parser.parse_args().requests
    ok = orjson.dumps({"success": True})
    partial = orjson.dumps(
        {
            "success": True,
            "accepted": 99,
            "rejected": [{"index": 3, "error": {"code": "invalid_payload"}}],
        }
    )
    for label, body in (("accepted", ok), ("partly rejected", partial)):
        inner = ingest_like(body, 200)
        bare = asyncio.run(drive(inner, n))
        wrapped = asyncio.run(drive(RefusalCounter(inner), n))
        print(
            f"{label:16} bare {bare:12,.0f} req/s · with metrics {wrapped:12,.0f} req/s · "
            f"ratio {wrapped / bare:.2f} · cost {1e6 / wrapped - 1e6 / bare:.2f} µs/request"
        )
    started = time.perf_counter()
    for _ in range(n):
        record_append("segment", 100, 0)
    per = (time.perf_counter() - started) / n * 1e6
    print(f"record_append    {per:.2f} µs per append (one group-commit answer per request)")


if __name__ == "__main__":
    main()
