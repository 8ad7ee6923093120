"""Rounds: one transaction for every processor, a failing one isolated and quarantined, and a
``kill -9`` at any moment replays without doubling or skipping (compared with a clean rebuild)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest

from engagehub import registry
from engagehub.bench.e2e import bodies
from engagehub.errors import ConflictError
from engagehub.model import IncomingEvent, StoredEvent
from engagehub.processing import get_offset, reset, run_round, run_until_caught_up
from engagehub.processing.health import ProcessorFailed, failures, skip
from engagehub.processing.log_index import LogIndex
from engagehub.processing.rounds import ROUND_CPU
from engagehub.processing.unmapped import UnmappedCounter
from engagehub.settings import Settings
from engagehub.storage import Database, event_index, logread
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.sqlite import SQLiteConnection
from engagehub.timeutil import now_ms
from engagehub.vendors import segment
from tests.conftest import make_source


class Poisoned:
    """A processor (old contract) that fails on any event named ``poison``."""

    name = "poisoned"
    where: str | None = None
    payload = False

    def __init__(self) -> None:
        self.seen: list[int] = []

    def apply(self, conn: Connection, events: list[StoredEvent]) -> None:
        for ev in events:
            if ev.vendor_event == "poison":
                raise ValueError(f"cannot digest {ev.dedup_key}")
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('poisoned', ?) ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + ? AS TEXT)",
            (str(len(events)), len(events)),
        )


def _event(key: str, name: str = "Order Completed", user: str = "u1") -> IncomingEvent:
    return IncomingEvent(key, 1_700_000_000_000, "{}", vendor_event=name, user_id=user)


def test_failing_processor_is_isolated_narrowed_and_skipped(db: Database) -> None:
    src, _ = make_source(db)
    processors = [LogIndex(), UnmappedCounter(), Poisoned()]
    with db.session() as conn:
        events = [_event(f"e{i}", "poison" if i == 12 else "Order Completed") for i in range(30)]
        log.append(conn, [log.Batch(src.id, 10, events)])
        with pytest.raises(ProcessorFailed) as caught:
            run_until_caught_up(conn, processors, window=8)
        assert caught.value.details["seq"] == 13
        assert "cannot digest e12" in caught.value.message
        # The others went on to the head; the failing one stopped right before its event.
        assert get_offset(conn, "log_index") == get_offset(conn, "unmapped") == 30
        assert get_offset(conn, "poisoned") == 12
        assert conn.scalar("SELECT value FROM meta WHERE key = 'poisoned'") == "12"
        assert failures(conn)["poisoned"]["seq"] == 13
        with pytest.raises(ConflictError):
            skip(conn, "poisoned", 14)  # only the event it is stuck on
        result = skip(conn, "poisoned", 13, who="test")
        assert "cannot digest" in str(result["error"])
        assert failures(conn) == {}
        skipped = conn.all("SELECT name, seq, skipped_by FROM processor_skips")
        assert skipped == [{"name": "poisoned", "seq": 13, "skipped_by": "test"}]
        run_until_caught_up(conn, processors, window=8)
        assert get_offset(conn, "poisoned") == 30
        assert conn.scalar("SELECT value FROM meta WHERE key = 'poisoned'") == "29"


def test_healthy_rounds_take_no_savepoints_and_a_failure_runs_isolated(db: Database) -> None:
    """A round runs its processors without savepoints (each journals every page it first
    touches); when one fails, the round rolls back whole and runs again with a savepoint per
    processor: the others' effects commit exactly once, the failing one keeps its cursor."""
    src, _ = make_source(db)
    processors = [LogIndex(), Poisoned(), UnmappedCounter()]
    with db.session() as conn:
        traced: list[str] = []
        if isinstance(conn, SQLiteConnection):
            conn.raw.set_trace_callback(traced.append)
        log.append(conn, [log.Batch(src.id, 10, [_event(f"a{i}") for i in range(10)])])
        first = run_round(conn, processors, 100)
        assert first.failed == {}
        assert first.cursors == {"log_index": 10, "poisoned": 10, "unmapped": 10}
        healthy = [t for t in traced if "SAVEPOINT" in t.upper()]
        made = [t for t in traced if t.startswith("INSERT INTO processor_offsets")]
        traced.clear()
        poison = [_event(f"b{i}", "poison" if i == 4 else "Order Completed") for i in range(10)]
        log.append(conn, [log.Batch(src.id, 10, poison)])
        second = run_round(conn, processors, 100)
        if isinstance(conn, SQLiteConnection):
            conn.raw.set_trace_callback(None)
        assert set(second.failed) == {"poisoned"}
        assert second.cursors == {"log_index": 20, "poisoned": 10, "unmapped": 20}
        counted = conn.scalar("SELECT SUM(count) FROM unmapped_events")
        assert counted == 20  # the rolled-back first attempt left nothing behind
        indexed = [s for _, s in event_index.pairs(conn)]
        assert sorted(set(indexed)) == list(range(1, 21))
        assert len(indexed) == len(set(indexed)) * 2  # each position under its user and name
        assert conn.scalar("SELECT value FROM meta WHERE key = 'poisoned'") == "10"
        if isinstance(conn, SQLiteConnection):
            assert healthy == []
            assert any("SAVEPOINT" in t.upper() for t in traced)  # the isolated attempt
            # cursors are made once, for new processors; later rounds only read them
            assert made
            assert not [t for t in traced if t.startswith("INSERT INTO processor_offsets")]


class Crash(BaseException):
    """Stands for the process dying in the middle of a round."""


class CrashAfterOthers:
    """Runs last in a round and kills it: nothing of the round may remain."""

    name = "crasher"

    def apply_window(self, window: Any) -> None:
        raise Crash

    def reset(self, conn: Connection) -> None:
        """Nothing derived."""


def test_a_round_is_one_transaction(db: Database) -> None:
    src, _ = make_source(db)
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, 10, [_event(f"e{i}", "Odd") for i in range(5)])])
        with pytest.raises(Crash):
            run_round(conn, [LogIndex(), UnmappedCounter(), CrashAfterOthers()], 100)
        assert event_index.pairs(conn) == []
        assert conn.scalar("SELECT COUNT(*) FROM unmapped_events") == 0
        assert get_offset(conn, "log_index") == 0
        result = run_round(conn, [LogIndex(), UnmappedCounter()], 100)
        assert result.cursors == {"log_index": 5, "unmapped": 5}
        assert conn.scalar("SELECT count FROM unmapped_events") == 5


class Spinner:
    """Burns ``seconds`` of CPU per window: the round must charge them to it."""

    name = "spinner"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def apply_window(self, window: Any) -> None:
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass

    def reset(self, conn: Connection) -> None:
        """Nothing derived."""


def test_a_round_reports_each_processors_cpu(db: Database) -> None:
    """``Round.cpu``: each processor's CPU, and the round's own statements as ``(round)``
    (what ``engagehub_processor_cpu_seconds`` sums); a failing one is charged too."""
    src, _ = make_source(db)
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, 10, [_event(f"e{i}", "poison") for i in range(5)])])
        result = run_round(conn, [LogIndex(), Spinner(0.05), Poisoned()], 100)
    assert set(result.cpu) == {"log_index", "spinner", "poisoned", ROUND_CPU}
    assert "poisoned" in result.failed
    assert 0.05 <= result.cpu["spinner"] < 0.5
    assert result.cpu["log_index"] < 0.05
    assert all(seconds >= 0 for seconds in result.cpu.values())


_SKIP_TABLES = {
    "events",
    "event_keys",
    "sources",
    "schema_migrations",
    "meta",
    "processor_offsets",
    "processor_failures",
    "processor_skips",
}
_WALL_CLOCK = {"updated_at", "recorded_at", "created_at"}
# Columns that record when (which round) a row was written, not what the log says.
_ROUND_TIME = {("profile_identities", "first_seen")}


def derived_tables(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but the log and bookkeeping, rows sorted, wall-clock columns left out."""
    if conn.dialect == "sqlite":
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        ]
    else:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchall()
        ]
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in sorted(set(names) - _SKIP_TABLES):
        if table.startswith("events_p"):
            continue  # partitions of the log
        if table == "event_index":  # posting lists are cut by windows: compare what they hold
            out[table] = [tuple(p) for p in event_index.pairs(conn)]
            continue
        cur = conn.execute(f"SELECT * FROM {table}")
        found = cur.fetchall()
        keep = [
            i
            for i, d in enumerate(cur.description)
            if d[0] not in _WALL_CLOCK
            and (table, d[0]) not in _ROUND_TIME
            # surrogate keys (numbered in insertion order) differ when windows differ
            and not (d[0] == "id" and all(isinstance(r[i], int) for r in found))
        ]
        rows = [tuple(row[i] for i in keep) for row in found]
        out[table] = sorted(rows, key=repr)
    return out


def _fill(conn: Connection, source_id: int, events: int) -> None:
    """Engagement events (with bounces: consent companions), identify calls, unknown names."""
    received = now_ms()
    for body in bodies(events, batch_size=100, users=300):
        parsed = segment.parse_envelope(segment.decode(body, "batch"), received).events
        log.append(conn, [log.Batch(source_id, received, parsed)])
    identifies = [
        IncomingEvent(
            f"id-{i}",
            received - i,
            "{}",
            type="identify",
            user_id=f"user-{i}",
            contact=f"user-{i}@example.com",
            properties={"plan": "pro" if i % 2 else "free", "phone": f"+1415555{i:04d}"},
        )
        for i in range(200)
    ]
    odd = [_event(f"odd-{i}", f"Mystery {i % 3}", f"user-{i}") for i in range(50)]
    log.append(conn, [log.Batch(source_id, received, [*identifies, *odd])])


_CHILD = """
import sys
from engagehub import registry
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import open_database

settings = Settings()
db = open_database(settings.database_url, settings)
with db.session() as conn:
    print("ready", flush=True)
    run_until_caught_up(conn, registry.processors(settings), window=int(sys.argv[1]))
"""


def _cursors(conn: Connection) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in conn.execute("SELECT name, seq FROM processor_offsets")}


def test_kill_9_mid_round_replays_exactly_once(db: Database, settings: Settings) -> None:
    """SIGKILL a processing process at random moments; then its state equals a clean rebuild."""
    src, _ = make_source(db, "segment")
    with db.session() as conn:
        _fill(conn, src.id, 6000)
        head = log.head(conn)
    rng = random.Random(15)
    env = {**os.environ, "ENGAGEHUB_DATABASE_URL": settings.database_url}
    kills = 0
    progress: list[dict[str, int]] = []
    while kills < 4:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, "25"], env=env, stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        before = min(progress[-1].values()) if progress else 0
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:  # until a round committed
            with db.session() as conn:
                if min(_cursors(conn).values(), default=0) > before:
                    break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if child.poll() is not None:
            child.stdout.close()
            break  # it finished before the kill: nothing left to interrupt
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
        kills += 1
        with db.session() as conn:
            progress.append(_cursors(conn))
    assert kills >= 2, "the log was processed too fast to interrupt; make it longer"
    assert any(min(p.values(), default=0) < head for p in progress)  # killed mid-catch-up
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(settings))
        replayed = derived_tables(conn)
        assert replayed["event_index"]
        assert replayed["profiles"]
        assert replayed["unmapped_events"]
        assert replayed["subscription_states"]  # the hard bounces unsubscribed someone
        for processor in registry.processors(settings):  # `engagehub reprocess NAME`, each
            reset(conn, processor)
            run_until_caught_up(conn, [processor])
        rebuilt = derived_tables(conn)
    for table in sorted(set(replayed) | set(rebuilt)):
        assert replayed.get(table) == rebuilt.get(table), table


def test_unmapped_and_index_count_each_event_once_across_windows(db: Database) -> None:
    src, _ = make_source(db)
    with db.session() as conn:
        events = [_event(f"e{i}", f"Name {i % 4}", f"user-{i % 7}") for i in range(101)]
        log.append(conn, [log.Batch(src.id, 10, events)])
        run_until_caught_up(conn, [LogIndex(), UnmappedCounter()], window=9)
        counts = {
            r["vendor_event"]: r["count"]
            for r in conn.all("SELECT vendor_event, count FROM unmapped_events")
        }
        assert counts == {f"Name {k}": len(range(k, 101, 4)) for k in range(4)}
        assert len(event_index.pairs(conn)) == 2 * 101  # user + name key each
        found, _ = logread.query(conn, logread.EventQuery(user_id="user-3", limit=1000))
        assert sorted(e.dedup_key for e in found) == sorted(
            f"e{i}" for i in range(101) if i % 7 == 3
        )
        assert orjson.dumps(counts)


def test_shards_divide_a_processor_and_reshard_without_loss(db: Database) -> None:
    """Shards own disjoint parts of the log; changing their count repeats and loses nothing."""
    from engagehub.processing.shards import processor_positions, reshard, units

    src, _ = make_source(db)
    index = LogIndex()
    with db.session() as conn:
        events = [_event(f"e{i}", "Odd", f"user-{i}") for i in range(90)]
        log.append(conn, [log.Batch(src.id, 10, events)])
        assert reshard(conn, index, 3)
        three = units([index], 3)
        assert [u.name for u in three] == ["log_index#0/3", "log_index#1/3", "log_index#2/3"]
        run_round(conn, three[:1], 40)  # one shard ahead, the others at 0
        run_round(conn, three[1:2], 20)
        owned = len(event_index.pairs(conn))
        assert 0 < owned < 2 * 60  # a user and a name key per event
        assert reshard(conn, index, 2)  # the laggards first catch up to 40, then 2 shards at 40
        rows = {r["name"]: r["seq"] for r in conn.all("SELECT name, seq FROM processor_offsets")}
        assert rows == {"log_index#0/2": 40, "log_index#1/2": 40}
        assert len(event_index.pairs(conn)) == 2 * 40
        run_until_caught_up(conn, units([index], 2))
        assert processor_positions(conn)["log_index"] == 90
        assert len(event_index.pairs(conn)) == 2 * 90  # each event once
        reset(conn, index)  # `engagehub reprocess log_index` of a sharded processor
        run_until_caught_up(conn, [index])
        rows = {r["name"]: r["seq"] for r in conn.all("SELECT name, seq FROM processor_offsets")}
        assert rows == {"log_index#0/2": 90, "log_index#1/2": 90}
        assert len(event_index.pairs(conn)) == 2 * 90
        assert reshard(conn, index, 1)
        assert get_offset(conn, "log_index") == 90
        found, _ = logread.query(conn, logread.EventQuery(user_id="user-7"))
        assert [e.dedup_key for e in found] == ["e7"]
