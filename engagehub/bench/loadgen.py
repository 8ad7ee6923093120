"""A small keep-alive HTTP/1.1 load generator on raw asyncio streams (no client overhead)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What a run measured."""

    requests: int = 0
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def percentile(self, pct: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
        return ordered[index]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    host: str,
    port: int,
    path: str,
    make_request: Callable[[int], tuple[bytes, dict[str, str]]],
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
) -> LoadResult:
    """POST ``make_request(i)`` (body, headers) over ``concurrency`` keep-alive connections."""
    result = LoadResult()
    counter = 0
    deadline = time.perf_counter() + duration_s

    def next_index() -> int | None:
        nonlocal counter
        if time.perf_counter() >= deadline:
            return None
        if max_requests is not None and counter >= max_requests:
            return None
        counter += 1
        return counter

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (i := next_index()) is not None:
                body, headers = make_request(i)
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                if "Content-Type" not in headers:
                    extra += "Content-Type: application/json\r\n"
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Length: {len(body)}\r\n{extra}\r\n"
                ).encode()
                start = time.perf_counter()
                writer.write(head + body)
                await writer.drain()
                status = await _read_response(reader)
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 300:
                    result.failures += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - start
    return result
