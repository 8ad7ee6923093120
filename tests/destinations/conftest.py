"""Destination fixtures: settings that allow loopback targets and retry at once, events, NATS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engagehub.model import IncomingEvent
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import ADMIN_SECRET, make_source
from tests.destinations.receiver import Receiver, receiver

EVENTS = ("Email Delivered", "Email Opened", "SMS Delivered", "Channel Subscription Updated")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Loopback destinations allowed (tests), 0.5 s timeout, immediate retries, 3 attempts."""
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        allow_private_destinations=True,
        destination_timeout_seconds=0.5,
        destination_backoff_seconds=0.0,
        destination_max_attempts=3,
    )


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A scripted HTTP receiver."""
    with receiver() as rec:
        yield rec


def add_events(db: Database, count: int, start: int = 0, users: int = 3) -> None:
    """Append ``count`` canonical events (users round-robin) to the log."""
    with db.session() as conn:
        src = conn.scalar("SELECT id FROM sources WHERE name = 'feed'")
    if src is None:
        src = make_source(db, "feed")[0].id
    events = [
        IncomingEvent(
            dedup_key=f"e{i}",
            event_time=1_764_000_000_000 + i * 1000,
            raw="{}",
            event=EVENTS[i % len(EVENTS)],
            channel="email",
            user_id=f"u{i % users}",
            contact=f"p{i}@example.com",
            properties={"email": f"p{i}@example.com", "n": i},
        )
        for i in range(start, start + count)
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(int(src), 1_764_000_000_000, events)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A real ``nats-server -js`` on a free loopback port."""
    binary = shutil.which("nats-server") or "/usr/bin/nats-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "nats-server did not start"
            time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
