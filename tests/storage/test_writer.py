"""The group-commit writer: what it commits together, and what the processors see of it."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

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


def test_requests_queued_while_a_round_holds_the_lock_join_one_commit(tmp_path: Path) -> None:
    """SQLite: the group is taken once the writer holds the write lock, so requests that
    arrived while a processor round held it are acknowledged by the same commit (not one more
    round later); the signal says the writer waits, and a round that lets it go first sees its
    appends."""
    db = open_database(f"sqlite:///{tmp_path}/w.db")
    with db.session() as conn:
        migrate(conn)
    source, _ = make_source(db)
    signal = IngestSignal()
    round_conn = db.connect()  # the processor process's connection
    holding = threading.Event()
    release = threading.Event()

    def hold_round() -> None:
        with round_conn.transaction():
            holding.set()
            release.wait(10)

    async def main() -> tuple[int, int]:
        writer = LogWriter(db)
        writer.signal = signal
        await writer.start()
        holder = threading.Thread(target=hold_round)
        holder.start()
        await asyncio.to_thread(holding.wait, 10)
        first = asyncio.ensure_future(writer.append(_batch(source.id, "a")))
        await asyncio.to_thread(eventually, lambda: signal.waiting, 10, 0.01, "writer waits")
        later = [asyncio.ensure_future(writer.append(_batch(source.id, f"b{i}"))) for i in range(4)]
        await asyncio.sleep(0.05)  # the later requests are queued behind the held lock
        release.set()
        await asyncio.to_thread(holder.join, 10)
        results = await asyncio.gather(first, *later)
        await writer.stop()
        return writer.commits, sum(r.inserted for r in results)

    commits, inserted = asyncio.run(main())
    round_conn.close()
    assert inserted == 15
    assert commits == 1, "requests queued during the round waited for a second commit"
    assert signal.waiting is False
    assert signal.commits == 1
    db.close()


def test_a_bad_request_queued_during_a_round_fails_alone(tmp_path: Path) -> None:
    """SQLite: rows are checked and built before the lock is taken and, for requests that
    arrive while it is held elsewhere, after; a request the sanity check refuses (a NUL
    character) gets its error and the requests it was grouped with are stored."""
    db = open_database(f"sqlite:///{tmp_path}/b.db")
    with db.session() as conn:
        migrate(conn)
    source, _ = make_source(db)
    signal = IngestSignal()
    round_conn = db.connect()
    holding = threading.Event()
    release = threading.Event()

    def hold_round() -> None:
        with round_conn.transaction():
            holding.set()
            release.wait(10)

    async def main() -> list[object]:
        writer = LogWriter(db)
        writer.signal = signal
        await writer.start()
        holder = threading.Thread(target=hold_round)
        holder.start()
        await asyncio.to_thread(holding.wait, 10)
        first = asyncio.ensure_future(writer.append(_batch(source.id, "a")))
        await asyncio.to_thread(eventually, lambda: signal.waiting, 10, 0.01, "writer waits")
        bad = IncomingEvent(dedup_key="bad\x00key", event_time=1_700_000_000_000, raw="{}")
        late = [
            asyncio.ensure_future(writer.append(_batch(source.id, "b"))),
            asyncio.ensure_future(writer.append(log.Batch(source.id, 1, [bad]))),
            asyncio.ensure_future(writer.append(_batch(source.id, "c"))),
        ]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.to_thread(holder.join, 10)
        results = await asyncio.gather(first, *late, return_exceptions=True)
        await writer.stop()
        return results

    results = asyncio.run(main())
    round_conn.close()
    assert isinstance(results[2], PayloadError)
    assert "NUL" in str(results[2])
    assert [r.inserted for r in results if not isinstance(r, BaseException)] == [3, 3, 3]
    with db.session() as conn:
        assert log.head(conn) == 9
    db.close()


def test_a_round_lets_a_waiting_writer_commit_first(tmp_path: Path) -> None:
    """SQLite: ``let_one_commit`` returns once the waiting writer holds the lock, so the next
    round's transaction starts after that commit and sees its events; with nothing waiting it
    returns at once."""
    db = open_database(f"sqlite:///{tmp_path}/y.db")
    with db.session() as conn:
        migrate(conn)
    source, _ = make_source(db)
    signal = IngestSignal()
    round_conn = db.connect()
    started = time.monotonic()
    let_one_commit(signal, started + 5)
    assert time.monotonic() - started < 0.5  # nothing waits: no idle time

    async def main() -> int:
        writer = LogWriter(db)
        writer.signal = signal
        await writer.start()
        seen = -1

        def next_round() -> None:
            nonlocal seen
            with round_conn.transaction():  # the round before: holds the lock
                while not signal.waiting:
                    time.sleep(0.005)
            let_one_commit(signal, time.monotonic() + 5)
            with round_conn.transaction():  # the next round
                seen = log.head(round_conn)

        pending = asyncio.ensure_future(asyncio.to_thread(next_round))
        await asyncio.sleep(0.05)
        await writer.append(_batch(source.id, "w", 5))
        await pending
        await writer.stop()
        return seen

    assert asyncio.run(main()) == 5
    round_conn.close()
    db.close()


@pytest.mark.parametrize("value", [True, False])
def test_signal_is_shared_state(value: bool) -> None:
    signal = IngestSignal()
    signal.waiting = value
    signal.committed()
    signal.committed()
    assert (signal.waiting, signal.commits) == (value, 2)
