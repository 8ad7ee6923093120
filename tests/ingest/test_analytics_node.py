"""Segment's own Node.js library, ``@segment/analytics-node`` from npm, unchanged but for ``host``.

It reaches the hub through a proxy that loses the first acknowledgement: the hub stores the
batch, the proxy hangs up before answering, the library retries, the hub keeps each event once.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store
from tests.live import LiveServer, live_server
from tests.npm import JS, node, package_file

TOKEN = "analytics-node-admin-token-0123456789"


@pytest.fixture
def hub(tmp_path: Any) -> Iterator[tuple[LiveServer, str]]:
    url = f"sqlite:///{tmp_path}/engagehub.db"
    db = open_database(url, Settings(database_url=url))
    with db.session() as conn:
        migrate(conn)
        _, key = source_store.create(conn, "backend", "segment")
    db.close()
    with live_server({"ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": TOKEN}) as live:
        yield live, key


class LosingProxy(ThreadingHTTPServer):
    """Forwards POSTs to the hub; drops the hub's answer to the first one (a lost ack)."""

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target = target
        self.seen: list[int] = []  # statuses the hub gave, in order
        self.lock = threading.Lock()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: LosingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        answer = httpx.post(self.server.target + self.path, content=body, headers=headers)
        with self.server.lock:
            self.server.seen.append(answer.status_code)
            first = len(self.server.seen) == 1
        if first:
            self.close_connection = True  # stored upstream; the client gets no reply at all
            return
        self.send_response(answer.status_code)
        self.send_header("content-type", answer.headers.get("content-type", "application/json"))
        self.send_header("content-length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_node_library_delivers_once_despite_a_lost_acknowledgement(
    hub: tuple[LiveServer, str],
) -> None:
    live, key = hub
    package_file("@segment/analytics-node", "package.json")
    proxy = LosingProxy(live.url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"http://127.0.0.1:{proxy.server_address[1]}"
        done = subprocess.run(
            [node(), str(JS / "send_node.mjs"), host, key],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == []
    assert len(report["sent"]) == 6
    assert len(proxy.seen) >= 2  # the lost batch was sent again
    assert set(proxy.seen) == {200}
    r = httpx.get(
        live.url + "/api/events",
        params={"source": "backend", "order": "asc"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    events = r.json()["events"]
    assert sorted((e["type"], e["raw"]["messageId"]) for e in events) == sorted(
        (t, m) for t, m in report["sent"]
    )
    assert {e["type"] for e in events} == {"track", "identify", "page", "screen", "group", "alias"}
    identify = next(e for e in events if e["type"] == "identify")
    assert identify["contact"] == "node@example.com"
    track = next(e for e in events if e["type"] == "track")
    assert track["message_id"] == "nm-1"
