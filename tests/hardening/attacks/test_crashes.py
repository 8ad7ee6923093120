"""Attack 3: inputs that used to crash a handler (500) get the one error shape; a crash that
still happens answers with the security headers and leaves the connection usable."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.bench.ingest import free_port
from engagehub.demo.signing import SendGridSigner
from engagehub.settings import Settings
from engagehub.storage import sources as source_store
from tests.conftest import ADMIN_SECRET, app_hub, assert_error
from tests.hardening.attacks.harness import ADMIN, read_response
from tests.live import LiveServer

DEPTH = 100_000
ANY = "invalid_payload"


def nested(depth: int) -> bytes:
    """A JSON array nested ``depth`` levels deep (2 bytes a level: 100,000 fit in 500 KB)."""
    return b"[" * depth + b"]" * depth


def test_very_deep_bodies_are_a_client_error(client: TestClient) -> None:
    body = b'{"batch": [{"type": "track", "event": "x", "properties": {"a": ' + nested(DEPTH)
    body += b"}}]}"
    hub = app_hub(client)
    with hub.db.session() as conn:
        _, key = source_store.create(conn, "web", "segment")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    for path in ("/v1/batch", "/v1/track"):
        anonymous = client.post(path, content=body)  # the batch splits: its write key is missing
        assert_error(anonymous, 401, "unauthorized") if "batch" in path else assert_error(
            anonymous, 400, ANY
        )
        # 100,000 levels is over the 32 KB event limit (413); 10,000 is still past msgspec's own
        assert client.post(path, content=body, headers=basic).status_code in (400, 413)
        small = body.replace(nested(DEPTH), nested(10_000))
        details = assert_error(client.post(path, content=small, headers=basic), 400, ANY)
        assert details["limit"] == 64
    xng = b'{"id": "u", "events": [{"event": "x", "timestamp": "2024-01-01T00:00:00Z", '
    xng += b'"properties": {"a": ' + nested(DEPTH) + b"}}]}"
    hub = app_hub(client)
    with hub.db.session() as conn:
        _, token = source_store.create(conn, "xng", "crossengage")
    response = client.post(
        "/crossengage/events",
        content=xng,
        headers={"X-XNG-AuthToken": token, "X-XNG-ApiVersion": "1"},
    )
    assert_error(response, 400, "invalid_payload")


@pytest.mark.parametrize("timestamp", ["²", "9" * 5000, "-1", "12a", " 1"])
def test_odd_sendgrid_timestamps_are_invalid_signatures(client: TestClient, timestamp: str) -> None:
    signer = SendGridSigner()
    hub = app_hub(client)
    with hub.db.session() as conn:
        source_store.create(conn, "sg", "sendgrid", secret=signer.public)
    headers = signer.headers(b"[]")
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = timestamp
    response = client.post(
        "/webhooks/sendgrid/sg",
        content=b"[]",
        headers={k: v.encode() for k, v in headers.items()},  # type: ignore[misc]
    )
    assert_error(response, 401, "invalid_signature")


@pytest.fixture
def crashing_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real app with one route that raises, served by uvicorn in a thread."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/crash.db",
        admin_token=ADMIN_SECRET,
    )
    app: FastAPI = create_app(settings)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    try:
        yield LiveServer(url, None, {})  # type: ignore[arg-type]
    finally:
        server.should_exit = True
        thread.join(15)


def test_a_crash_keeps_headers_and_the_connection(crashing_server: LiveServer) -> None:
    import socket

    host, port = crashing_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == 500
        assert b'"code":"internal"' in body
        assert headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers.get("connection", "keep-alive").lower() != "close"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
        status, _, _ = read_response(sock)
        assert status == 200
    assert httpx.get(crashing_server.url + "/api/sources", headers=ADMIN).status_code == 200
