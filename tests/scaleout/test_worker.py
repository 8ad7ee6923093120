"""Processors across processes: one cursor holder at a time, the worker, read-your-writes."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.errors import TransientError
from engagehub.model import IncomingEvent, StoredEvent
from engagehub.processing import step
from engagehub.settings import Settings
from engagehub.storage import Database, event_index
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms
from tests.conftest import ADMIN_SECRET, ADMIN_TOKEN, make_source
from tests.scaleout.procs import wait_caught_up, worker_process


def _events(n: int, prefix: str = "e", name: str = "Custom Thing") -> list[IncomingEvent]:
    return [
        IncomingEvent(
            dedup_key=f"{prefix}{i}",
            type="track",
            vendor_event=name,
            event=None,
            channel=None,
            user_id=f"u{i % 7}",
            event_time=now_ms(),
            properties={},
            raw="{}",
        )
        for i in range(n)
    ]


class Gate:
    """A processor whose first ``apply`` blocks until released; counts every event applied."""

    name = "gate"
    where: str | None = None
    payload = False

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.applied: list[int] = []

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Record positions; the first call waits for the test."""
        if not self.applied:
            self.entered.set()
            assert self.release.wait(20)
        self.applied.extend(e.seq for e in events)

    def reset(self, conn: Connection) -> None:
        """Nothing to forget."""


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_cursor_is_advanced_by_one_process_at_a_time(db: Database) -> None:
    source, _ = make_source(db)
    with db.session() as conn:
        log.append(conn, [log.Batch(source.id, now_ms(), _events(30))])
    gate = Gate()
    a, b, c = db.connect(), db.connect(), db.connect()
    try:
        first = threading.Thread(target=step, args=(a, gate, 10))
        first.start()
        assert gate.entered.wait(20)
        # Busy elsewhere: a non-waiting step returns the committed cursor at once, applies nothing.
        assert step(b, gate, 10, wait=False) == (0, 30)
        # A waiting step queues behind the holder, then continues from the holder's cursor.
        results: list[tuple[int, int]] = []
        second = threading.Thread(target=lambda: results.append(step(c, gate, 10)))
        second.start()
        second.join(0.3)
        assert second.is_alive(), "the second step must wait for the cursor"
        gate.release.set()
        first.join(20)
        second.join(20)
        assert results == [(20, 30)]
        assert gate.applied == list(range(1, 21))  # no position applied twice
    finally:
        for conn in (a, b, c):
            conn.close()


def test_worker_process_follows_the_log_and_stops_cleanly(database_url: str, db: Database) -> None:
    source, _ = make_source(db)
    with db.session() as conn:
        log.append(conn, [log.Batch(source.id, now_ms(), _events(120))])
    with worker_process({"ENGAGEHUB_DATABASE_URL": database_url}) as proc:
        wait_caught_up(db, ["log_index", "unmapped"])
        with db.session() as conn:
            log.append(conn, [log.Batch(source.id, now_ms(), _events(30, prefix="late"))])
        wait_caught_up(db, ["log_index", "unmapped"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    with db.session() as conn:
        count = conn.scalar(
            "SELECT count FROM unmapped_events WHERE vendor_event = ?", ["Custom Thing"]
        )
        indexed = len({seq for _, seq in event_index.pairs(conn)})
    assert count == 150
    assert indexed == 150


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_api_without_processors_waits_for_worker_cursors(database_url: str, db: Database) -> None:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        run_processors=False,
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        worker_process({"ENGAGEHUB_DATABASE_URL": database_url}),
        TestClient(create_app(settings)) as client,
    ):
        r = client.put(
            "/api/subscriptions",
            json={
                "subscriptions": [
                    {"key": "ada@example.com", "type": "EMAIL", "status": "UNSUBSCRIBED"}
                ]
            },
            headers=admin,
        )
        assert r.status_code == 200, r.text
        # The answer came after a worker applied the change: it is readable at once.
        states = client.get(
            "/api/subscriptions", params={"key": "ada@example.com"}, headers=admin
        ).json()["subscriptions"]
        assert [(s["group"], s["status"]) for s in states] == [(None, "unsubscribed")]


def test_api_without_processors_or_workers_answers_503_not_forever(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_SECRET,
        run_processors=False,
    )
    app = create_app(settings)
    with TestClient(app):
        hub = app.state.hub
        with pytest.raises(TransientError) as info:
            asyncio.run(hub._poll_cursors(1, ["consent"], timeout=0.2))
    assert info.value.http_status == 503
    assert info.value.details["processors"] == "consent"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_idle_worker_wakes_on_append_notify(database_url: str, db: Database) -> None:
    source, _ = make_source(db)
    env = {"ENGAGEHUB_DATABASE_URL": database_url, "ENGAGEHUB_WORKER_POLL_INTERVAL": "60"}
    with worker_process(env):
        with db.session() as conn:
            log.append(conn, [log.Batch(source.id, now_ms(), _events(5))])
        wait_caught_up(db, ["unmapped"], timeout=30)  # the first look needs no wake-up
        deadline = time.monotonic() + 10
        with db.session() as conn:
            while not conn.scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE query = 'LISTEN engagehub_log'"
            ):
                assert time.monotonic() < deadline, "the worker never listened"
                time.sleep(0.05)
        with db.session() as conn:
            log.append(conn, [log.Batch(source.id, now_ms(), _events(5, prefix="n"))])
        # Polling alone would take 60 s: the append's NOTIFY wakes the idle worker.
        wait_caught_up(db, ["unmapped"], timeout=10)
    with db.session() as conn:
        assert conn.scalar("SELECT count FROM unmapped_events") == 10


class Counting:
    """A processor that counts the rounds that reached it."""

    name = "counting"
    where: str | None = None
    payload = False

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Count."""
        self.calls += 1

    def reset(self, conn: Connection) -> None:
        """Nothing to forget."""


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_unit_held_by_another_worker_backs_off_instead_of_polling(
    database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engagehub.processing import rounds
    from engagehub.scaleout import worker as worker_module
    from engagehub.storage import locks

    source, _ = make_source(db)
    with db.session() as conn:
        log.append(conn, [log.Batch(source.id, now_ms(), _events(5))])
    attempts: list[list[str]] = []
    real_lock = rounds._lock

    def counted(conn: Connection, names: Sequence[str], wait: bool) -> tuple[list[str], list[str]]:
        got, busy = real_lock(conn, names, wait)
        attempts.append(busy)
        return got, busy

    monkeypatch.setattr(rounds, "_lock", counted)
    monkeypatch.setattr(worker_module, "BUSY_BACKOFF_S", 0.5)
    settings = Settings(database_url=database_url, worker_poll_interval=0.01)
    processor = Counting()
    holder = db.connect()  # another worker, in the middle of a round of this processor
    try:
        with holder.transaction():
            holder.scalar(
                "SELECT pg_advisory_xact_lock(?, hashtext(?))::text",
                (locks.PROCESSOR_CLASS, processor.name),
            )
            worker = worker_module.Worker(settings, db, [processor], [])

            async def run_for(seconds: float) -> None:
                task = asyncio.create_task(worker.run())
                await asyncio.sleep(seconds)
                worker.stop()
                await task

            asyncio.run(run_for(1.6))
    finally:
        holder.close()
    busy = [a for a in attempts if processor.name in a]
    # Polling every 0.01 s would have asked ~160 times; backing off 0.5 s asks about 4 times.
    assert 1 <= len(busy) <= 6, len(busy)
    assert processor.calls == 0
