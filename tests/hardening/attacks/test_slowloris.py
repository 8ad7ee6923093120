"""Attack 5: connections that trickle headers or bodies are closed after the read timeouts."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.hardening.attacks.harness import attacked_server, connect

SLOW = 200


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (TimeoutError, BlockingIOError):
        return False


def test_slow_connections_are_closed(tmp_path: Path) -> None:
    settings = {"header_timeout_seconds": "2", "body_timeout_seconds": "2"}
    with attacked_server(tmp_path, **settings) as server:
        sockets = []
        try:
            for i in range(SLOW):
                sock = connect(server)
                if i % 2:  # headers that never end
                    sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                else:  # a body that never comes
                    sock.sendall(
                        b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                        b'\r\nContent-Length: 400000\r\n\r\n{"batch": ['
                    )
                sockets.append(sock)
            started = time.monotonic()
            for _tick in range(3):  # keep trickling headers: the header deadline still holds
                time.sleep(0.5)
                for sock in sockets[1::2]:
                    sock.sendall(b"a")
            open_ = list(sockets)
            deadline = started + 10
            while open_ and time.monotonic() < deadline:
                time.sleep(0.25)
                for sock in list(open_):
                    sock.settimeout(0.001)
                    if _closed(sock):
                        open_.remove(sock)
            elapsed = time.monotonic() - started
            print(f"\nslowloris: {SLOW - len(open_)} of {SLOW} closed after {elapsed:.1f} s")
            assert not open_, f"{len(open_)} of {SLOW} slow connections still open"
            assert httpx.get(server.url + "/healthz").status_code == 200
        finally:
            for sock in sockets:
                sock.close()
