"""Background services: periodic jobs (outbox delivery, broadcasts, journey timers) in any process.

A service is not a log follower: it works through its own durable queue rows (claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and must tolerate running in several processes at once.
``serve`` runs every registered service next to the processors; ``engagehub worker`` runs them
without the HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from engagehub.storage import Database

logger = logging.getLogger(__name__)


class Service(Protocol):
    """A periodic job with its own durable state."""

    name: str
    """Shown in status output and logs."""
    interval: float
    """Seconds to sleep when ``run_once`` found nothing to do."""

    def run_once(self, db: Database) -> bool:
        """Do one bounded unit of work on a worker thread; True when there may be more."""


class ServiceRunner:
    """Runs each service in its own loop; a failing service never stops the others or ingest."""

    def __init__(self, db: Database, services: Sequence[Service]) -> None:
        self.db = db
        self.services = list(services)
        self.errors: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        """Start one loop per service."""
        for service in self.services:
            self._wake[service.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._loop(service), name=service.name))

    def wake(self, name: str | None = None) -> None:
        """Run the named service (every service by default) now instead of after its interval."""
        for key, event in self._wake.items():
            if name is None or key == name:
                event.set()

    async def _loop(self, service: Service) -> None:
        wake = self._wake[service.name]
        while True:
            try:
                more = await asyncio.to_thread(service.run_once, self.db)
                self.errors.pop(service.name, None)
            except Exception as exc:
                logger.exception("service %s failed", service.name)
                self.errors[service.name] = f"{type(exc).__name__}: {exc}"
                more = False
            if more:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), service.interval)
            wake.clear()

    async def stop(self) -> None:
        """Cancel the loops; a unit of work in flight finishes on its thread and is idempotent."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for service in self.services:
            close = getattr(service, "close", None)
            if close is not None:
                await asyncio.to_thread(close)
