"""``engagehub worker``: log processors and background services without the HTTP server.

Any number of workers (and ``serve`` processes) can run against one PostgreSQL database: they
coordinate only through it. A processor is advanced by one process at a time (advisory lock
per processor, cursor row ``FOR UPDATE``); a worker that finds a processor busy elsewhere moves
on and polls again. Services claim their own queue rows with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import psycopg

from engagehub.processing import Processor, Unit
from engagehub.processing.health import Follower
from engagehub.processing.services import Service, ServiceRunner
from engagehub.processing.shards import reshard_all, units
from engagehub.settings import Settings
from engagehub.storage import Database, migrate
from engagehub.storage import events as log
from engagehub.storage.base import Connection

logger = logging.getLogger(__name__)

BUSY_BACKOFF_S = 1.0
"""How long a unit another worker holds waits before trying its lock again (a worker that
dies is taken over within about this long)."""


class Worker:
    """Follows the log with every processor (one thread and connection each) and runs services."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        processors: Sequence[Processor],
        services: Sequence[Service],
    ) -> None:
        self.settings = settings
        self.db = db
        self.processors = list(processors)
        self.units = units(self.processors, settings.processor_shards)
        self.services = ServiceRunner(db, services)
        self.offsets: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._wake = {u.name: asyncio.Event() for u in self.units}
        self._closing = threading.Event()

    def stop(self) -> None:
        """Ask the loops to finish their current step and return."""
        self._stop.set()
        self._wake_all()

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def run(self) -> None:
        """Migrate, then follow the log and run services until ``stop()``."""
        await asyncio.to_thread(self._migrate)
        await self.services.start()
        loops = [asyncio.create_task(self._follow(u), name=u.name) for u in self.units]
        listener = None
        if self.db.dialect == "postgresql" and self.processors:
            loop = asyncio.get_running_loop()
            listener = threading.Thread(
                target=self._listen, args=(loop,), name="engagehub-listen", daemon=True
            )
            listener.start()
        try:
            await self._stop.wait()
        finally:
            self._closing.set()
            if listener is not None:
                await asyncio.to_thread(listener.join, 5)
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.services.stop()

    def _migrate(self) -> None:
        with self.db.session() as conn:
            migrate(conn)
            # ENGAGEHUB_PROCESSOR_SHARDS changed: move the cursors
            reshard_all(
                conn, self.processors, self.settings.processor_shards, self.settings.processor_batch
            )

    async def _follow(self, processor: Unit) -> None:
        """Step one processor (or shard) until caught up, then poll; reconnect after errors."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"engagehub-{processor.name}")
        conn: Connection | None = None
        # A shard owns about 1/count of a window's events: its windows span count times the
        # positions, so its rounds hold as many events (a round has a fixed cost).
        spread = processor.shard.count if processor.shard is not None else 1
        follower = Follower([processor], self.settings.processor_batch * spread)
        try:
            while not self._stop.is_set():
                try:
                    if conn is None:
                        conn = await loop.run_in_executor(executor, self.db.connect)
                    more = await loop.run_in_executor(
                        executor, partial(follower.round, conn, wait=False)
                    )
                except Exception as exc:
                    # The cursor is durable: the failed window is retried from it.
                    logger.exception("processor %s failed", processor.name)
                    self.errors[processor.name] = f"{type(exc).__name__}: {exc}"
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                        conn = None
                    await self._pause(processor.name, 1.0)
                    continue
                if processor.name in follower.errors:
                    self.errors[processor.name] = follower.errors[processor.name]
                else:
                    self.errors.pop(processor.name, None)
                if processor.name in follower.cursors:
                    self.offsets[processor.name] = follower.cursors[processor.name]
                if not more:
                    # Held by another worker: it advances this unit, asking again soon only
                    # burns both processes' CPU (and PostgreSQL's) on a machine that has none.
                    busy = processor.name in follower.busy
                    await self._pause(
                        processor.name,
                        max(BUSY_BACKOFF_S, self.settings.worker_poll_interval)
                        if busy
                        else self.settings.worker_poll_interval,
                    )
        finally:
            if conn is not None:
                closing = conn
                await loop.run_in_executor(executor, closing.close)
            executor.shutdown(wait=True)

    async def _pause(self, name: str, seconds: float) -> None:
        """Sleep until an append is notified, ``stop()``, or ``seconds`` (the poll fallback)."""
        event = self._wake[name]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """Thread: LISTEN for appends and wake every processor loop (PostgreSQL)."""
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.db.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {log.LOG_CHANNEL}")
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            loop.call_soon_threadsafe(self._wake_all)
            except psycopg.Error as exc:  # polling still runs; listen again shortly
                logger.warning("LISTEN %s failed: %s", log.LOG_CHANNEL, exc)
                self._closing.wait(1.0)


def run_worker(
    settings: Settings,
    db: Database,
    processors: Sequence[Processor],
    services: Sequence[Service],
) -> None:
    """Run a worker in the foreground until SIGTERM or SIGINT."""

    async def main() -> None:
        worker = Worker(settings, db, processors, services)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        try:
            await worker.run()
        finally:
            db.close()

    asyncio.run(main())
