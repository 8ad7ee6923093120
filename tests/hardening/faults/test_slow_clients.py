"""Slowloris: many connections that trickle their headers or bodies do not starve other clients."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.live import live_server

SLOW = 100


def test_slow_clients_do_not_starve_others(tmp_path: Path) -> None:
    env = {
        "ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp_path}/slow.db",
        "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    with live_server(env) as server:
        key = httpx.post(
            f"{server.url}/api/sources",
            json={"name": "s", "kind": "segment"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()["write_key"]
        host, port = server.url.removeprefix("http://").split(":")
        sockets: list[socket.socket] = []
        try:
            for i in range(SLOW):
                s = socket.create_connection((host, int(port)), timeout=5)
                if i % 2:  # headers that never end
                    s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                else:  # a body that never comes
                    s.sendall(
                        b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b'Content-Length: 400000\r\n\r\n{"batch": ['
                    )
                sockets.append(s)
            latencies = []
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for round_ in range(5):
                    for s in sockets[::10]:  # keep trickling
                        s.sendall(b"a")
                    started = time.monotonic()
                    body = {
                        "batch": [
                            {
                                "type": "track",
                                "event": "X",
                                "userId": "u",
                                "messageId": f"fast-{round_}",
                            }
                        ],
                        "writeKey": key,
                    }
                    assert http.post("/v1/batch", json=body).status_code == 200
                    assert http.get("/healthz").status_code == 200
                    latencies.append(time.monotonic() - started)
        finally:
            for s in sockets:
                s.close()
            server.kill()  # a graceful stop would wait for the trickling requests
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.5, latencies
    assert latencies[-1] < 3.0, latencies
