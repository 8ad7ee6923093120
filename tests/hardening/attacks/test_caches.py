"""Attack 2: random webhook paths and write keys cannot grow the server's memory."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.settings import Settings
from tests.conftest import ADMIN_SECRET, app_hub
from tests.hardening.attacks.harness import attacked_server, connect, read_response, rss_mb

REQUESTS = 3000


def _post(sock: socket.socket, name: str) -> int:
    head = f"POST /webhooks/moengage/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    sock.sendall(head.encode() + b"{}")
    return read_response(sock)[0]


def test_long_random_webhook_paths_do_not_grow_memory(tmp_path: Path) -> None:
    with attacked_server(tmp_path) as server:
        with connect(server) as sock:
            _post(sock, "warmup")
        before = rss_mb(server)
        statuses = set()
        with connect(server) as sock:
            for _ in range(REQUESTS):  # over the path limit (uvicorn itself refuses 64k URLs)
                statuses.add(_post(sock, secrets.token_hex(4 * 1024)))
            for _ in range(REQUESTS):  # within the path limit: looked up, never kept for long
                statuses.add(_post(sock, secrets.token_hex(100)))
        after = rss_mb(server)
        print(f"\nrandom webhook paths: RSS {before:.0f} -> {after:.0f} MB")
    assert statuses == {414, 404}, statuses
    assert after - before < 20, (before, after)


def test_source_lookups_are_bounded(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/c.db",
        admin_token=ADMIN_SECRET,
        source_cache_size=50,
    )
    with TestClient(create_app(settings)) as client:
        hub = app_hub(client)
        for i in range(300):
            client.post(f"/webhooks/moengage/n{i}", content=b"{}")
            client.post("/v1/track", json={"writeKey": f"key-{i}", "event": "x", "userId": "u"})
        assert len(hub._sources) == 50
