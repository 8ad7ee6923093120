"""Group commit: requests hand their events to one writer thread, which commits many requests in
one transaction and only then releases them; a crash before the commit means no 2xx was sent.

The same thread runs the log processors' transactions (``submit``), so on SQLite nothing else
ever competes for the write lock inside the server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from engagehub.errors import EngagehubError, TransientError
from engagehub.model import AppendResult
from engagehub.storage import events as log
from engagehub.storage.base import Connection, Database

T = TypeVar("T")
logger = logging.getLogger(__name__)

_MAX_ROWS_PER_COMMIT = 20_000
Group = list[tuple[log.Batch, "asyncio.Future[AppendResult]"]]


class IngestSignal:
    """What the processors (any process) see of ingest: whether the writer is waiting for the
    write lock right now, and how many group commits it has made (a round lets it go first)."""

    def __init__(self) -> None:
        self._shared = multiprocessing.get_context("spawn").Array("q", 2, lock=False)

    @property
    def waiting(self) -> bool:
        """The writer waits for the write lock (a processor round holds it)."""
        return bool(self._shared[0])

    @waiting.setter
    def waiting(self, value: bool) -> None:
        self._shared[0] = int(value)

    @property
    def commits(self) -> int:
        """Group commits (or failed attempts) so far."""
        return int(self._shared[1])

    def committed(self) -> None:
        """One more group went through the write lock."""
        self._shared[1] += 1


class LogWriter:
    """The single writer of one process: appends (group-committed) and processor steps."""

    def __init__(self, db: Database, on_commit: Callable[[int], None] | None = None) -> None:
        self._db = db
        self._on_commit = on_commit
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="engagehub-writer")
        self._conn: Connection | None = None
        self._pending: Group = []
        self._pending_lock = threading.Lock()  # the writer thread takes groups under the lock
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._reconnect = asyncio.Lock()
        self.commits = 0
        self.appended = 0
        self.signal: IngestSignal | None = None
        """Shared with the processors: appends waiting, commits made (they let ingest first)."""
        self.before_append: Callable[[Connection, list[log.Batch]], None] | None = None
        """Called on the writer connection with each group before it is appended (the click
        timing rules of ``classify.timing`` flag events there)."""

    async def start(self) -> None:
        """Open the writer connection on the writer thread and start committing."""
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, self._db.connect)
        self._task = asyncio.create_task(self._run(), name="engagehub-log-writer")

    async def append(self, batch: log.Batch) -> AppendResult:
        """Queue one request's events; returns once they are committed (or raises)."""
        if self._closing or self._task is None:
            raise TransientError("the server is shutting down; retry")
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        with self._pending_lock:
            self._pending.append((batch, future))
        self._idle.clear()
        self._wakeup.set()
        return await asyncio.shield(future)

    async def submit(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread with the writer connection.

        A failure drops the connection and the next call opens a new one, so the server
        recovers by itself when the database comes back (PostgreSQL restart, disk freed).
        """
        assert self._task is not None, "writer not started"
        loop = asyncio.get_running_loop()
        async with self._reconnect:  # two callers must not both open (and one leak) a connection
            if self._conn is None:
                self._conn = await loop.run_in_executor(self._executor, self._db.connect)
            conn = self._conn
        try:
            return await loop.run_in_executor(self._executor, fn, conn)
        except EngagehubError as exc:
            if exc.http_status < 500:  # the caller's own refusal (not found, conflict...)
                raise
            await self._drop(conn)
            raise
        except Exception:
            await self._drop(conn)
            raise

    async def _drop(self, conn: Connection) -> None:
        """Forget a connection that failed; the next call opens a new one."""
        if self._conn is conn:
            self._conn = None
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, _close_quietly, conn)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._commit(None)
            self._idle.set()
            if self._closing and not self._pending:
                return

    def _take(self) -> Group:
        """The next group: queued requests up to ``_MAX_ROWS_PER_COMMIT`` rows (any thread)."""
        with self._pending_lock:
            rows = 0
            taken = 0
            for batch, _ in self._pending:
                if taken and rows + len(batch.events) > _MAX_ROWS_PER_COMMIT:
                    break
                rows += len(batch.events)
                taken += 1
            group, self._pending = self._pending[:taken], self._pending[taken:]
        return group

    async def _commit(self, given: Group | None) -> None:
        """Commit ``given``, or (None) the group queued when the write lock is taken: requests
        that arrive while a processor round holds the lock join this commit, not the next."""
        taken: Group = list(given) if given is not None else []

        def prepare(conn: Connection, group: Group) -> log.Rows:
            batches = [batch for batch, _ in group]
            if batches and self.before_append is not None:
                self.before_append(conn, batches)
            return log.prepare(batches)

        def run(conn: Connection) -> list[AppendResult]:
            if given is None:
                taken.extend(self._take())
            rows = prepare(conn, taken)  # checks and rows before the lock: it is held for inserts
            signal = self.signal
            if signal is not None:
                signal.waiting = True
            with conn.transaction():  # on SQLite this waits for the write lock
                if signal is not None:
                    signal.waiting = False
                if given is None:
                    late = self._take()  # arrived while the lock was held elsewhere
                    taken.extend(late)  # (before preparing: a failure retries them too)
                    rows += prepare(conn, late)
                if not taken:
                    return []
                return log.append(conn, [batch for batch, _ in taken], rows)

        try:
            results = await self.submit(run)
        except Exception as exc:  # every waiting request gets the error; none is acknowledged
            group = taken or self._take()  # failed before the lock: this group gets the error
            if len(group) > 1:  # one poisoned request must not fail its neighbours: retry alone
                for item in group:
                    await self._commit([item])
                return
            error = (
                exc
                if isinstance(exc, EngagehubError)
                else TransientError(f"could not store events: {exc}", reason=type(exc).__name__)
            )
            logger.error("group commit of %d requests failed: %s", len(group), exc)
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        finally:
            if self.signal is not None:
                self.signal.waiting = False
                self.signal.committed()
        if not results:
            return
        self.commits += 1
        for (_, future), result in zip(taken, results, strict=True):
            self.appended += result.inserted
            if not future.done():
                future.set_result(result)
        if self._on_commit is not None and results:
            self._on_commit(results[-1].head)

    async def stop(self) -> None:
        """Commit what is queued, then close the connection and the thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._conn is not None:
            conn = self._conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    @property
    def busy(self) -> bool:
        """Appends are waiting: processors should let them go first."""
        return bool(self._pending)

    async def idle(self, timeout: float) -> None:
        """Wait until no append is queued, or ``timeout`` seconds (so processors still progress)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def stats(self) -> dict[str, Any]:
        """Counters for metrics and tests."""
        return {"commits": self.commits, "appended": self.appended, "pending": len(self._pending)}


def _close_quietly(conn: Connection) -> None:
    """Close a connection that just failed; it may already be dead."""
    with contextlib.suppress(Exception):
        conn.close()
