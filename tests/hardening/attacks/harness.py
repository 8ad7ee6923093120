"""What every attack test needs: a real server process, its resident memory, raw sockets.

Attacks run against ``engagehub serve`` on loopback only, with bounded loops; where memory is
the harm, the server process's RSS is read before and after (psutil) and the figures printed
(``pytest -s`` shows them) so a regression shows how much an attacker gained.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from tests.conftest import ADMIN_TOKEN
from tests.live import LiveServer, live_server

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MB = 1024 * 1024


@contextmanager
def attacked_server(
    tmp_path: Path, environ: dict[str, str] | None = None, **settings: str
) -> Iterator[LiveServer]:
    """A fresh SQLite-backed server; ``settings`` are ENGAGEHUB_* names without the prefix."""
    full = {
        "ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp_path}/attack.db",
        "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN,
        **{f"ENGAGEHUB_{k.upper()}": v for k, v in settings.items()},
        **(environ or {}),
    }
    with live_server(full) as server:
        yield server


def rss_mb(server: LiveServer) -> float:
    """Resident memory of the server process, in MB."""
    return float(psutil.Process(server.proc.pid).memory_info().rss) / MB


def address(server: LiveServer) -> tuple[str, int]:
    """(host, port) of the server."""
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def connect(server: LiveServer, source: str = "127.0.0.1", timeout: float = 10) -> socket.socket:
    """A raw TCP connection from ``source`` (any 127.x address works on Linux loopback)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(address(server))
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]


def client_from(source: str, server: LiveServer) -> httpx.Client:
    """An HTTP client whose connections come from the loopback address ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.url, transport=transport, timeout=10)
