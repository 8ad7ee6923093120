"""Attacks 8 and 9 (admin input): SSRF targets the old guard let through, DNS rebinding between
check and connect, destination URLs and secrets that looped forever with an empty last_error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engagehub.destinations import store
from engagehub.destinations.guard import blocked_reason, check_url
from engagehub.destinations.service import DeliveryService
from engagehub.errors import PayloadError
from engagehub.settings import Settings
from engagehub.storage import Database, migrate, open_database
from tests.conftest import ADMIN_SECRET, assert_error
from tests.destinations.conftest import add_events
from tests.destinations.receiver import Receiver, receiver
from tests.hardening.attacks.harness import ADMIN


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback."""
    with receiver() as rec:
        yield rec


def delivered(
    settings: Settings, webhooks: list[tuple[str, str, str]], events: int, rounds: int
) -> list[store.Destination]:
    """Webhook destinations ``(name, url, secret)`` created as stored (no API validation) on a
    fresh database, ``events`` events delivered for ``rounds`` rounds; each one afterwards."""
    db: Database = open_database(settings.database_url, settings)
    try:
        with db.session() as conn:
            migrate(conn)
            for name, url, secret in webhooks:
                store.create(conn, name, "webhook", url, secret, start=0)
        add_events(db, events)
        service = DeliveryService(settings)
        try:
            service.drain(db, rounds=rounds)
        finally:
            service.close()
        with db.session() as conn:
            return [store.get(conn, name) for name, _, _ in webhooks]
    finally:
        db.close()


@pytest.mark.parametrize(
    "address",
    [
        "100.100.100.200",  # Alibaba Cloud metadata, in the 100.64/10 shared range
        "100.64.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "fd00::1",
        "fe80::1",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    assert blocked_reason(address) is not None, address
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(PayloadError, match="resolves to"):
        check_url(f"http://{host}/hook", "webhook", allow_private=False)


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "2002:808:808::"])
def test_global_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None


def test_the_checked_address_is_the_one_connected_to(
    tmp_path: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers the receiver once, then an unroutable address. Loopback
    has no DNS server to rebind, so the resolver is scripted; the HTTP exchange is real."""
    port = int(hook.url.rsplit(":", 1)[1].split("/")[0])
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, *args, **kwargs)
        address = next(answers, "10.255.255.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/r.db",
        admin_token=ADMIN_SECRET,
        allow_private_destinations=True,
        destination_timeout_seconds=2,
    )
    url = f"http://rebind.example:{port}/hook"
    [dest] = delivered(
        settings,
        [("r", url, "plain-secret")],
        events=3,
        rounds=20,
    )
    assert dest.last_error is None, dest.last_error
    assert len(hook.received) == 1
    assert hook.received[0].headers["host"] == f"rebind.example:{port}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://example.com/a\r\nX-Injected: 1"}, "url"),
        ({"url": "http://example.com/a b"}, "url"),
        ({"url": "http://example.com/", "secret": "whsec_not base64!"}, "secret"),
        ({"url": "http://example.com/", "secret": "line\r\nbreak"}, "secret"),
    ],
)
def test_bad_destinations_are_refused_on_create(
    client: TestClient, body: dict[str, str], field: str
) -> None:
    response = client.post(
        "/api/destinations", json={"name": "d", "kind": "webhook", **body}, headers=ADMIN
    )
    details = assert_error(response, 400, "invalid_payload")
    assert details["field"] == field


def test_any_delivery_exception_is_recorded(tmp_path: Path, hook: Receiver) -> None:
    """A destination stored before validation (a malformed secret) fails visibly, not in a loop."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/e.db",
        admin_token=ADMIN_SECRET,
        allow_private_destinations=True,
        destination_backoff_seconds=0,
        destination_max_attempts=2,
    )
    bad, crlf = delivered(
        settings,
        [("bad", hook.url, "whsec_%%%"), ("crlf", hook.url + "\r\nX: y", "plain")],
        events=2,
        rounds=50,
    )
    assert "base64" in (bad.last_error or ""), bad
    assert "control" in (crlf.last_error or ""), crlf
    assert hook.received == []
