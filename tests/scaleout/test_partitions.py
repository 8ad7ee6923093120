"""The partitioned log on PostgreSQL: migration of existing rows, months ahead, retention."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from engagehub import registry
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.scaleout.maintenance import PartitionMaintenance
from engagehub.settings import Settings
from engagehub.storage import Database, open_database, partitions
from engagehub.storage import events as log
from engagehub.storage.migrate import load_migrations, migrate, split_statements
from engagehub.timeutil import now_ms
from tests.conftest import make_source

PG = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
DAY = 86_400_000


def ms(year: int, month: int, day: int = 1) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


def _events(keys: list[str], name: str = "Custom Thing") -> list[IncomingEvent]:
    return [
        IncomingEvent(dedup_key=k, event_time=now_ms(), raw="{}", vendor_event=name) for k in keys
    ]


def _layout(db: Database) -> dict[str, int]:
    with db.session() as conn:
        return {
            r["tableoid"]: r["n"]
            for r in conn.all(
                "SELECT tableoid::regclass::text AS tableoid, COUNT(*) AS n FROM events GROUP BY 1"
            )
        }


def test_month_arithmetic() -> None:
    assert partitions.month_start(ms(2026, 12, 31) + 5) == ms(2026, 12)
    assert partitions.add_months(ms(2026, 11), 2) == ms(2027, 1)
    assert partitions.add_months(ms(2027, 1), -1) == ms(2026, 12)
    p = partitions.partition_for(ms(2024, 2, 29))
    assert (p.name, p.start, p.end) == ("events_p202402", ms(2024, 2), ms(2024, 3))


@PG
def test_log_is_partitioned_and_dedup_holds_across_months(db: Database) -> None:
    source, _ = make_source(db)
    with db.session() as conn:
        assert partitions.is_partitioned(conn)
        old = ms(2025, 3, 14)
        first = log.append(conn, [log.Batch(source.id, old, _events(["a", "b"]))])
        # The same keys a month later (a vendor retry) are duplicates, though in another partition.
        again = log.append(conn, [log.Batch(source.id, now_ms(), _events(["a", "b", "c"]))])
        assert (first[0].inserted, again[0].inserted, again[0].duplicates) == (2, 1, 2)
        assert conn.scalar("SELECT COUNT(*) FROM event_keys") == 3
        # The exactly-once guard is a real constraint: a second row for a key cannot be stored.
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(
                "INSERT INTO event_keys (source_id, dedup_key) VALUES (?, 'a')", [source.id]
            )
        assert [e.dedup_key for e in log.read_range(conn, 0, 100)] == ["a", "b", "c"]
    current = partitions.partition_for(now_ms()).name
    assert _layout(db) == {"events_p202503": 2, current: 1}


def test_migration_moves_existing_rows_into_partitions(pg_schema_url: str) -> None:
    db = open_database(pg_schema_url, Settings(database_url=pg_schema_url))
    try:
        with db.session() as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at BIGINT NOT NULL)"
            )
            for m in load_migrations("postgresql"):
                if m.version < 600:
                    for statement in split_statements(m.sql, "postgresql"):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, 0)", [m.version, m.name]
                    )
            assert not partitions.is_partitioned(conn)
        source, _ = make_source(db)
        with db.session() as conn:
            log.append(conn, [log.Batch(source.id, ms(2024, 1, 31), _events(["x", "y"]))])
            log.append(conn, [log.Batch(source.id, ms(2024, 2, 1), _events(["z"]))])
            applied = [m.version for m in migrate(conn)]
            assert 600 in applied
            assert partitions.is_partitioned(conn)
            assert (
                log.append(conn, [log.Batch(source.id, now_ms(), _events(["x", "w"]))])[0].inserted
                == 1
            )
            rows = [(e.seq, e.dedup_key) for e in log.read_range(conn, 0, 100)]
        assert rows == [(1, "x"), (2, "y"), (3, "z"), (4, "w")]  # positions continue
        assert _layout(db)["events_p202401"] == 2
        assert _layout(db)["events_p202402"] == 1
    finally:
        db.close()


@PG
def test_maintenance_creates_ahead_and_retention_drops_applied_months(
    db: Database, settings: Settings
) -> None:
    source, _ = make_source(db)
    now = now_ms()
    old, older = now - 400 * DAY, now - 800 * DAY
    with db.session() as conn:
        log.append(conn, [log.Batch(source.id, older, _events(["o1", "o2"]))])
        log.append(conn, [log.Batch(source.id, old, _events(["m1"]))])
        log.append(conn, [log.Batch(source.id, now, _events(["n1"]))])
        processors = [p.name for p in registry.processors(settings)]
        # No processor has applied anything yet: retention keeps every partition.
        assert partitions.drop_expired(conn, now, 365, processors) == []

    maintenance = PartitionMaintenance(
        settings.model_copy(update={"retention_days": 365}), processors
    )
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(settings))
    maintenance.run_once(db)
    assert maintenance.last["dropped"] == [
        partitions.partition_for(older).name,
        partitions.partition_for(old).name,
    ]
    ahead = [partitions.partition_for(partitions.add_months(now, i)).name for i in (1, 2)]
    assert set(ahead) <= set(maintenance.last["created"])
    with db.session() as conn:
        names = [p.name for p in partitions.existing(conn)]
        assert names == [partitions.partition_for(now).name, *ahead]
        assert [e.dedup_key for e in log.read_range(conn, 0, 100)] == ["n1"]
        # Dedup keys went with their partition: a replay of a dropped event is stored anew.
        assert conn.scalar("SELECT COUNT(*) FROM event_keys") == 1
        again = log.append(conn, [log.Batch(source.id, now, _events(["o1", "n1"]))])
        assert (again[0].inserted, again[0].duplicates) == (1, 1)
    maintenance.run_once(db)
    assert maintenance.last == {"created": [], "dropped": []}


def test_sqlite_log_is_not_partitioned(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/plain.db", Settings())
    try:
        with db.session() as conn:
            migrate(conn)
            assert not partitions.is_partitioned(conn)
        assert PartitionMaintenance(Settings(retention_days=1)).run_once(db) is False
    finally:
        db.close()


@PG
def test_concurrent_overlapping_appends_store_each_key_once(db: Database) -> None:
    source, _ = make_source(db)
    inserted: list[int] = []
    errors: list[BaseException] = []

    def appender(seed: int) -> None:
        rng = random.Random(seed)
        conn = db.connect()
        try:
            for _ in range(25):
                keys = [f"k{rng.randrange(300)}" for _ in range(40)]  # overlapping, any order
                result = log.append(conn, [log.Batch(source.id, now_ms(), _events(keys))])
                inserted.append(result[0].inserted)
        except BaseException as exc:  # a deadlock or a unique violation would land here
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=appender, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with db.session() as conn:
        stored = [e.dedup_key for e in log.read_range(conn, 0, 100_000)]
        keys = conn.scalar("SELECT COUNT(*) FROM event_keys")
    assert len(stored) == len(set(stored)) == keys == sum(inserted)
