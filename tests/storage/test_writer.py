"""The group-commit writer: what it commits together, and what the processors see of it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent
from engagehub.processing.runner import let_one_commit
from engagehub.storage import Database, migrate, open_database
from engagehub.storage import events as log
from engagehub.storage.writer import IngestSignal, LogWriter
from tests.conftest import make_source
from tests.waiting import eventually


def _batch(source_id: int, prefix: str, n: int = 3) -> log.Batch:
    events = [
        IncomingEvent(dedup_key=f"{prefix}-{i}", event_time=1_700_000_000_000, raw="{}")
        for i in range(n)
    ]
    return log.Batch(source_id, 1, events)


def test_appends_from_many_requests_commit_with_exact_counts(db: Database) -> None:
    """Both backends: every request gets its own counts; the signal counts commits and is
    left clear."""
    source, _ = make_source(db)

    async def main() -> tuple[list[tuple[int, int]], int, bool, int]:
        writer = LogWriter(db)
        writer.signal = IngestSignal()
        await writer.start()
        batches = [_batch(source.id, f"r{i % 5}") for i in range(20)]  # 15 are duplicates
        results = await asyncio.gather(*(writer.append(b) for b in batches))
        await writer.stop()
        return (
            [(r.inserted, r.duplicates) for r in results],
            writer.signal.commits,
            writer.signal.waiting,
            writer.commits,
        )

    counts, signalled, waiting, commits = asyncio.run(main())
    assert sum(i for i, _ in counts) == 15
    assert sum(d for _, d in counts) == 45
    assert signalled == commits >= 1
    assert waiting is False
    with db.session() as conn:
        assert log.head(conn) == 15


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """SQLite only: there the write lock a processor round holds is the one file lock."""
    db = open_database(f"sqlite:///{tmp_path}/w.db")
    with db.session() as conn:
        migrate(conn)
    yield db
    db.close()


@asynccontextmanager
async def started_writer(db: Database, signal: IngestSignal) -> AsyncIterator[LogWriter]:
    """A running writer that reports to ``signal``, stopped afterwards."""
    writer = LogWriter(db)
    writer.signal = signal
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop()


@asynccontextmanager
async def held_round(db: Database) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A processor round's transaction on its own connection (the processor process's), held
    until the yielded ``release`` is awaited."""
    conn = db.connect()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with conn.transaction():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()

    async def let_go() -> None:
        release.set()
        await asyncio.to_thread(holder.join, 10)

    try:
        await asyncio.to_thread(holding.wait, 10)
        yield let_go
    finally:
        await let_go()
        conn.close()


async def first_waits(writer: LogWriter, source_id: int, signal: IngestSignal) -> Any:
    """The first request, once the writer is blocked on the held lock."""
    first = asyncio.ensure_future(writer.append(_batch(source_id, "a")))
    await asyncio.to_thread(eventually, lambda: signal.waiting, 10, 0.01, "writer waits")
    return first


def test_requests_queued_while_a_round_holds_the_lock_join_one_commit(
    sqlite_db: Database,
) -> None:
    """SQLite: the group is taken once the writer holds the write lock, so requests that
    arrived while a processor round held it are acknowledged by the same commit (not one more
    round later); the signal says the writer waits, and a round that lets it go first sees its
    appends."""
    source, _ = make_source(sqlite_db)
    signal = IngestSignal()

    async def main() -> tuple[int, int]:
        async with started_writer(sqlite_db, signal) as writer, held_round(sqlite_db) as release:
            first = await first_waits(writer, source.id, signal)
            later = [writer.append(_batch(source.id, f"b{i}")) for i in range(4)]
            queued = [asyncio.ensure_future(c) for c in later]
            await asyncio.sleep(0.05)  # the later requests are queued behind the held lock
            await release()
            results = await asyncio.gather(first, *queued)
        return writer.commits, sum(r.inserted for r in results)

    commits, inserted = asyncio.run(main())
    assert inserted == 15
    assert commits == 1, "requests queued during the round waited for a second commit"
    assert signal.waiting is False
    assert signal.commits == 1


def test_a_bad_request_queued_during_a_round_fails_alone(sqlite_db: Database) -> None:
    """SQLite: rows are checked and built before the lock is taken and, for requests that
    arrive while it is held elsewhere, after; a request the sanity check refuses (a NUL
    character) gets its error and the requests it was grouped with are stored."""
    source, _ = make_source(sqlite_db)
    signal = IngestSignal()
    bad = IncomingEvent(dedup_key="bad\x00key", event_time=1_700_000_000_000, raw="{}")

    async def main() -> list[object]:
        async with started_writer(sqlite_db, signal) as writer, held_round(sqlite_db) as release:
            first = await first_waits(writer, source.id, signal)
            late = [
                asyncio.ensure_future(writer.append(_batch(source.id, "b"))),
                asyncio.ensure_future(writer.append(log.Batch(source.id, 1, [bad]))),
                asyncio.ensure_future(writer.append(_batch(source.id, "c"))),
            ]
            await asyncio.sleep(0.05)
            await release()
            return await asyncio.gather(first, *late, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[2], PayloadError)
    assert "NUL" in str(results[2])
    assert [r.inserted for r in results if not isinstance(r, BaseException)] == [3, 3, 3]
    with sqlite_db.session() as conn:
        assert log.head(conn) == 9


def test_a_round_lets_a_waiting_writer_commit_first(sqlite_db: Database) -> None:
    """SQLite: ``let_one_commit`` returns once the waiting writer holds the lock, so the next
    round's transaction starts after that commit and sees its events; with nothing waiting it
    returns at once."""
    source, _ = make_source(sqlite_db)
    signal = IngestSignal()
    round_conn = sqlite_db.connect()
    started = time.monotonic()
    let_one_commit(signal, started + 5)
    assert time.monotonic() - started < 0.5  # nothing waits: no idle time

    holding = threading.Event()

    async def main() -> int:
        seen = -1

        def next_round() -> None:
            nonlocal seen
            with round_conn.transaction():  # the round before: holds the lock
                holding.set()
                while not signal.waiting:
                    time.sleep(0.005)
            let_one_commit(signal, time.monotonic() + 5)
            with round_conn.transaction():  # the next round
                seen = log.head(round_conn)

        async with started_writer(sqlite_db, signal) as writer:
            pending = asyncio.ensure_future(asyncio.to_thread(next_round))
            # Append only once the round holds the lock: a thread started late (a loaded
            # machine) used to find the append committed already and wait for it forever.
            assert await asyncio.to_thread(holding.wait, 10)
            await writer.append(_batch(source.id, "w", 5))
            await pending
        return seen

    assert asyncio.run(main()) == 5
    round_conn.close()


@pytest.mark.parametrize("value", [True, False])
def test_signal_is_shared_state(value: bool) -> None:
    signal = IngestSignal()
    signal.waiting = value
    signal.committed()
    signal.committed()
    assert (signal.waiting, signal.commits) == (value, 2)
