"""``engagehub bench webhooks``: each vendor webhook path's events/s next to the Segment path.

All requests are built and signed before the clock starts (SendGrid ECDSA, Twilio HMAC-SHA1,
bearer tokens), so the figures measure verification + parsing + durable commit in the server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engagehub.bench.ingest import (
    WRITE_KEY,
    _basic,
    batch_template,
    free_port,
    serve_command,
    server,
)
from engagehub.bench.loadgen import run_load
from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store
from engagehub.vendors.twilio import signature as twilio_signature

Request = tuple[bytes, dict[str, str]]
_TOKEN = "bench-twilio-token"  # noqa: S105 - benchmark-only credential
_BEARER = "bench-bearer-token"


def _sendgrid_requests(key: ec.EllipticCurvePrivateKey, count: int, size: int) -> list[Request]:
    out = []
    for r in range(count):
        events = [
            {
                "email": f"u{i}@example.com",
                "timestamp": 1772445600 + i,
                "event": "delivered",
                "sg_event_id": f"sg-{r}-{i}",
                "sg_message_id": f"m{r}x{i}.filter0001.1.2",
                "response": "250 OK",
                "engagehub_message_id": f"msg-{r}-{i}",
            }
            for i in range(size)
        ]
        body = orjson.dumps(events)
        ts = str(int(time.time()))
        sig = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        out.append(
            (
                body,
                {
                    "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                    "X-Twilio-Email-Event-Webhook-Timestamp": ts,
                },
            )
        )
    return out


def _bearer_requests(
    make: Callable[[int, int], dict[str, Any]],
    count: int,
    size: int,
    wrap: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> list[Request]:
    headers = {"Authorization": f"Bearer {_BEARER}"}
    return [(orjson.dumps(wrap([make(r, i) for i in range(size)])), headers) for r in range(count)]


def _braze_event(r: int, i: int) -> dict[str, Any]:
    return {
        "event_type": "users.messages.email.Open",
        "id": f"bz-{r}-{i}",
        "time": 1772445600,
        "user": {"user_id": f"b{i}", "external_user_id": f"user-{i}"},
        "properties": {
            "campaign_id": "cmp-1",
            "dispatch_id": f"d-{r}",
            "email_address": f"u{i}@example.com",
        },
    }


def _moengage_event(r: int, i: int) -> dict[str, Any]:
    return {
        "event_name": "Email Opened",
        "event_uuid": f"moe-{r}-{i}",
        "event_time": 1772445600,
        "uid": f"user-{i}",
        "email_id": f"u{i}@example.com",
        "event_attributes": {"campaign_id": "c-1", "campaign_name": "Spring"},
    }


def _twilio_requests(url: str, count: int, inbound: bool) -> list[Request]:
    out = []
    for r in range(count):
        params = [
            ("MessageSid", f"SM{r:08d}"),
            ("AccountSid", "AC1"),
            ("From", "+14155550100" if inbound else "+14155550199"),
            ("To", "+14155550199" if inbound else "+14155550100"),
        ]
        params.append(
            ("Body", "STOP" if r % 50 == 0 else "hello")
            if inbound
            else ("MessageStatus", "delivered")
        )
        out.append(
            (
                urlencode(params).encode(),
                {
                    "X-Twilio-Signature": twilio_signature(_TOKEN, url, params),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        )
    return out


def _measure(
    port: int,
    path: str,
    requests: list[Request],
    per_request: int,
    concurrency: int,
    duration: float,
) -> dict[str, float]:
    result = asyncio.run(
        run_load(
            "127.0.0.1",
            port,
            path,
            lambda i: requests[i - 1],
            concurrency,
            duration,
            max_requests=len(requests),
        )
    )
    ok = sum(n for status, n in result.statuses.items() if status < 300)
    return {
        "events_per_s": ok * per_request / result.elapsed_s,
        "failures": result.failures,
        "p99_ms": result.percentile(99),
    }


def run(duration: float = 5.0, concurrency: int = 32, batch_size: int = 100) -> dict[str, Any]:
    """Measure every path in one server; ratios are against the Segment path of the same run."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    batches = 1500
    singles = 20_000
    figures: dict[str, Any] = {
        "batch_size": batch_size,
        "concurrency": concurrency,
        "duration_s": duration,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db = open_database(url, Settings(database_url=url))
        with db.session() as conn:
            migrate(conn)
            source_store.create(conn, "seg", "segment", write_key=WRITE_KEY)
            source_store.create(conn, "sg", "sendgrid", secret=public)
            source_store.create(conn, "tw", "twilio", secret=_TOKEN)
            source_store.create(conn, "bz", "braze", secret=_BEARER)
            source_store.create(conn, "moe", "moengage", secret=_BEARER)
        db.close()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        template = batch_template(batch_size)
        segment = [
            (
                template.replace(b"@@R@@", f"s{r}".encode()),
                {"Authorization": "Basic " + _basic(WRITE_KEY)},
            )
            for r in range(batches)
        ]
        paths: list[tuple[str, str, list[Request], int]] = [
            ("segment", "/v1/batch", segment, batch_size),
            (
                "sendgrid",
                "/webhooks/sendgrid/sg",
                _sendgrid_requests(key, batches, batch_size),
                batch_size,
            ),
            (
                "braze",
                "/webhooks/braze-currents/bz",
                _bearer_requests(_braze_event, batches, batch_size, lambda e: {"events": e}),
                batch_size,
            ),
            (
                "moengage",
                "/webhooks/moengage/moe",
                _bearer_requests(
                    _moengage_event,
                    batches,
                    batch_size,
                    lambda e: {"app_name": "bench", "events": e},
                ),
                batch_size,
            ),
            (
                "twilio_status",
                "/webhooks/twilio/tw/status",
                _twilio_requests(base + "/webhooks/twilio/tw/status", singles, False),
                1,
            ),
            (
                "twilio_inbound",
                "/webhooks/twilio/tw/inbound",
                _twilio_requests(base + "/webhooks/twilio/tw/inbound", singles, True),
                1,
            ),
        ]
        env = {"ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": "bench-admin-token"}
        with server(serve_command(port), env, port):
            for name, path, requests, per in paths:
                figures[name] = _measure(port, path, requests, per, concurrency, duration)
    baseline = figures["segment"]["events_per_s"]
    for name, *_ in paths:
        figures[name]["ratio_vs_segment"] = figures[name]["events_per_s"] / baseline
    return figures
