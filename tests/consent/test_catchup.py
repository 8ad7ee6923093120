"""Bulk catch-up after a CSV import: lockstep windows with shared reads give exactly the state
each processor reaches alone, leave no processor behind, and skip only what changes nothing."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from engagehub import registry
from engagehub.bench.csv_import import write_file
from engagehub.consent import batches, store
from engagehub.consent.changes import WHERE
from engagehub.consent.csv_import import CsvErrorReport, CsvImport, file_digest, run_import
from engagehub.model import IncomingEvent
from engagehub.processing import SharedWindow, reset, run_until_caught_up, step
from engagehub.settings import Settings
from engagehub.storage import Database, event_index
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from tests.conftest import make_source

T0 = 1_772_445_600_000
DERIVED = {
    "states": "SELECT contact, channel, group_name, status, event_time, seq, source, reason, "
    "own_action FROM subscription_states ORDER BY contact, channel, group_name",
    "history": "SELECT contact, channel, group_name, status, previous_status, event_time, seq, "
    "source, reason, outcome, event_id FROM subscription_history "
    "ORDER BY seq, contact, channel, group_name",
    "profiles": "SELECT id, merged_into, traits, trait_times, identities, first_seen, last_seen "
    "FROM profiles "
    "ORDER BY id",
    "identities": "SELECT kind, value, profile_id FROM profile_identities ORDER BY kind, value",
}


def import_file(conn: Connection, path: Path) -> None:
    """The CLI's import path without its catch-up (events appended, processors not run)."""
    job = CsvImport(file_digest(path), T0)
    builtin = store.builtin_source_id(conn)

    def sink(item: batches.Chunk) -> int:
        return batches.append(conn, builtin, item, T0)

    report = CsvErrorReport(path.with_suffix(".errors.csv"))
    with path.open("rb") as fh:
        run_import(fh, job, lambda changes: set(), sink, report, chunk=17)
    report.close()
    job.close()


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    found = {
        name: [tuple(r) for r in conn.execute(sql).fetchall()] for name, sql in DERIVED.items()
    }
    found["index"] = [tuple(p) for p in event_index.pairs(conn)]  # lists are cut by windows
    return found


def test_lockstep_catch_up_equals_each_processor_alone(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "subs.csv"
    assert write_file(path, 120, 0.1, seed=3) > 0
    processors = registry.processors(settings)
    with db.session() as conn:
        import_file(conn, path)
        run_until_caught_up(conn, processors, window=23)  # windows cut rows and companions
        head = log.head(conn)
        for processor in processors:  # nobody lags, log_index included (companions indexed)
            cursor = conn.scalar(
                "SELECT seq FROM processor_offsets WHERE name = ?", (processor.name,)
            )
            assert cursor == head, processor.name
        indexed = len({seq for _, seq in event_index.pairs(conn)})
        assert indexed == conn.scalar(
            "SELECT COUNT(*) FROM events WHERE user_id IS NOT NULL OR contact IS NOT NULL"
            " OR COALESCE(event, vendor_event) IS NOT NULL"
        )
        lockstep = snapshot(conn)
        assert lockstep["states"]
        assert lockstep["profiles"]
        assert lockstep["history"]
        # Rebuild each processor alone, the pre-lockstep way: its own reads, whole log at once.
        for processor in processors:
            reset(conn, processor)
        for processor in processors:
            while True:
                cursor, now_head = step(conn, processor, 1_000)
                if cursor >= now_head:
                    break
        assert log.head(conn) == head  # replayed companions were deduplicated, not re-added
        assert snapshot(conn) == lockstep


def test_shared_window_reads_what_read_range_reads(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "subs.csv"
    write_file(path, 40, 0.1, seed=5)
    with db.session() as conn:
        import_file(conn, path)
        run_until_caught_up(conn, registry.processors(settings), window=50)
        head = log.head(conn)
        shared = SharedWindow()
        rnd = random.Random(1)
        for _ in range(6):
            after = rnd.randrange(0, head)
            upto = rnd.randrange(after + 1, head + 1)
            for processor in registry.processors(settings):
                where = getattr(processor, "where", None)
                expected = log.read_range(conn, after, upto, where)
                assert shared.read(conn, after, upto, where) == expected


def test_consent_reads_no_event_it_derived(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "subs.csv"
    write_file(path, 30, 0.0, seed=9)
    src, _ = make_source(db, "mail", "sendgrid")
    vendor = [
        IncomingEvent(
            f"unsub-{i}",
            T0 + 1,
            "{}",
            event="Email Unsubscribed",
            contact=f"person.{i}@example{i % 97}.com",
        )
        for i in range(5)
    ]
    with db.session() as conn:
        import_file(conn, path)
        log.append(conn, [log.Batch(src.id, T0, vendor)])
        run_until_caught_up(conn, registry.processors(settings))
        everything = log.read_range(conn, 0, log.head(conn))
        read = log.read_range(conn, 0, log.head(conn), WHERE)
    derived = [e for e in everything if "derived_from" in e.properties]
    assert derived  # the companions of the vendor changes exist in the log ...
    assert not [e for e in read if "derived_from" in e.properties]  # ... but are not read back
    records = [e for e in everything if e.event == batches.IMPORTED]
    assert len(records) == 2  # 30 rows in chunks of 17: one record per chunk, no companions
    assert {e.seq for e in records} <= {e.seq for e in read}
    assert not [e for e in derived if e.properties["derived_from"] in {r.event_id for r in records}]


def test_profile_rows_are_rewritten_only_when_they_change(db: Database, settings: Settings) -> None:
    src, _ = make_source(db)
    processors = registry.processors(settings)

    def track(key: str, t: int, received: int) -> None:
        event = IncomingEvent(key, t, orjson.dumps({}).decode(), contact="ada@example.com")
        log.append(conn, [log.Batch(src.id, received, [event])])
        run_until_caught_up(conn, processors)

    with db.session() as conn:
        track("1", T0, T0)
        first = conn.one("SELECT id, last_seen, updated_at FROM profiles")
        assert first is not None
        assert first["updated_at"] == T0
        track("2", T0, T0 + 5_000)  # same person, same time: nothing to write
        assert conn.one("SELECT id, last_seen, updated_at FROM profiles") == first
        track("3", T0 + 1, T0 + 9_000)  # later activity moves last_seen
        later = conn.one("SELECT last_seen, updated_at FROM profiles")
        assert later == {"last_seen": T0 + 1, "updated_at": T0 + 9_000}
