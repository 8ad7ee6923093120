"""Real local servers for the providers: an aiosmtpd SMTP server and fake SendGrid/Twilio APIs
on real sockets that check the request shape and answer with the real response shapes."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from fastapi.testclient import TestClient

from engagehub.bench.ingest import free_port
from engagehub.settings import Settings
from tests.conftest import ADMIN_SECRET


@dataclass
class Sink:
    """What the SMTP server received; addresses in ``reject``/``defer`` get 550/451."""

    port: int
    messages: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[email.message.EmailMessage]:
        """Messages delivered to ``address``."""
        with self.lock:
            return [m for rcpt, m in self.messages if address in rcpt]

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 no such user"
        if address in self.defer:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        msg = email.message_from_bytes(content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        if any(r.startswith("slow") for r in envelope.rcpt_tos):
            await asyncio.sleep(1.0)  # stored, but the reply comes after the client gave up
        return "250 2.0.0 queued"


@contextmanager
def running_sink() -> Iterator[Sink]:
    """A real SMTP server on a loopback port, for the block's duration."""
    port = free_port()
    sink = Sink(port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    """A real SMTP server on a loopback port."""
    with running_sink() as sink:
        yield sink


@dataclass
class FakeApi:
    """A fake provider API: records requests, answers per ``script`` (status by recipient)."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status_for: dict[str, Any] = field(default_factory=dict)
    seen_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


def _serve(handler_cls: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def sendgrid_api() -> Iterator[FakeApi]:
    """Mail Send v3: checks auth and the JSON shape, answers 202 + X-Message-Id or errors."""
    api = FakeApi("")

    class Handler(_Quiet):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            api.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
            if self.path != "/v3/mail/send":
                return self.reply(404, {"errors": [{"message": "not found"}]})
            if self.headers.get("Authorization") != "Bearer SG.test-key":
                return self.reply(401, {"errors": [{"message": "authorization required"}]})
            problems = [
                f for f in ("personalizations", "from", "subject", "content") if not body.get(f)
            ]
            if problems:
                return self.reply(
                    400, {"errors": [{"message": "missing", "field": p} for p in problems]}
                )
            to = body["personalizations"][0]["to"][0]["email"]
            status = api.status_for.get(to, 202)
            if status != 202:
                return self.reply(status, {"errors": [{"message": f"status {status}"}]})
            return self.reply(202, None, {"X-Message-Id": "sg" + uuid.uuid4().hex[:16]})

    for server in _serve(Handler):
        api.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield api


@pytest.fixture
def twilio_api() -> Iterator[FakeApi]:
    """Messages API: Basic auth, form To/From/Body/StatusCallback, idempotency token, 201 JSON."""
    api = FakeApi("")

    class Handler(_Quiet):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            api.requests.append({"path": self.path, "headers": dict(self.headers), "form": form})
            expected = "Basic " + base64.b64encode(b"AC123:tok").decode()
            if self.headers.get("Authorization") != expected:
                return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
            if self.path != "/2010-04-01/Accounts/AC123/Messages.json":
                return self.reply(404, {"code": 20404, "message": "not found", "status": 404})
            if not form.get("To", "").startswith("+") or not form.get("Body"):
                return self.reply(
                    400, {"code": 21211, "message": f"Invalid 'To' {form.get('To')}", "status": 400}
                )
            status = api.status_for.get(form["To"], 201)
            if status == 0:  # hang past the client's timeout, then fail the connection
                time.sleep(1.5)
                return None
            if isinstance(status, tuple):  # (HTTP status, Twilio error code)
                return self.reply(status[0], {"code": status[1], "message": "err", "status": 400})
            if status != 201:
                return self.reply(status, {"code": 20500, "message": "error", "status": status})
            token = self.headers.get("I-Twilio-Idempotency-Token", "")
            if token in api.seen_tokens:
                return self.reply(201, api.seen_tokens[token])
            sid = "SM" + uuid.uuid4().hex
            answer = {
                "sid": sid,
                "status": "queued",
                "to": form["To"],
                "from": form.get("From"),
                "body": form["Body"],
                "num_segments": "1",
                "account_sid": "AC123",
                "uri": f"/2010-04-01/Accounts/AC123/Messages/{sid}.json",
            }
            api.seen_tokens[token] = answer
            return self.reply(201, answer)

    for server in _serve(Handler):
        api.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield api


@pytest.fixture
def settings(database_url: str, smtp_sink: Sink) -> Settings:
    """Settings with the SMTP provider pointing at the local server."""
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        smtp_port=smtp_sink.port,
        email_from="news@shop.test",
        public_base_url="https://hub.test",
        run_services=False,
    )


def subscribe(
    client: TestClient,
    admin: dict[str, str],
    key: str,
    kind: str = "EMAIL",
    status: str = "SUBSCRIBED",
    groups: list[dict[str, str]] | None = None,
) -> None:
    """Set a subscription through the consent API."""
    item: dict[str, Any] = {"key": key, "type": kind, "status": status}
    if groups:
        item["groups"] = groups
    r = client.put("/api/subscriptions", json={"subscriptions": [item]}, headers=admin)
    assert r.status_code == 200, r.text
    assert not r.json()["failures"], r.text


def identify(client: TestClient, write_key: str, user_id: str, traits: dict[str, Any]) -> None:
    """Send a Segment identify so the profile has traits."""
    r = client.post(
        "/v1/identify", json={"userId": user_id, "traits": traits}, auth=(write_key, "")
    )
    assert r.status_code == 200, r.text


def qs(url: str) -> dict[str, str]:
    """Query parameters of a URL."""
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
