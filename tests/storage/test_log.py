"""The event log on both backends: exactly-once append, positions, reads, queries, cursors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engagehub.errors import ConflictError, NotFound, PayloadError
from engagehub.model import IncomingEvent, event_id_for
from engagehub.processing import run_until_caught_up
from engagehub.processing.log_index import LogIndex
from engagehub.storage import Database, logread, migrate
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.storage.migrate import load_migrations
from engagehub.storage.sqlite import SQLiteConnection


def ev(key: str, **kw: object) -> IncomingEvent:
    base: dict[str, object] = {
        "dedup_key": key,
        "event_time": 1_700_000_000_000,
        "raw": f'{{"k":"{key}"}}',
        "event": "Email Opened",
        "channel": "email",
        "user_id": "u1",
    }
    base.update(kw)
    return IncomingEvent(**base)  # type: ignore[arg-type]


def test_append_is_exactly_once_per_source(db: Database) -> None:
    with db.session() as conn:
        a, _ = source_store.create(conn, "a", "segment")
        b, _ = source_store.create(conn, "b", "segment")
        first = log.append(conn, [log.Batch(a.id, 1, [ev("m1"), ev("m2"), ev("m1")])])
        assert (first[0].inserted, first[0].duplicates) == (2, 1)
        again = log.append(
            conn, [log.Batch(a.id, 2, [ev("m1"), ev("m3")]), log.Batch(b.id, 2, [ev("m1")])]
        )
        assert [(r.inserted, r.duplicates) for r in again] == [(1, 1), (1, 0)]
        assert again[0].head == again[1].head == log.head(conn) == 4
        rows = log.read_range(conn, 0, 10)
    assert [(r.source_id, r.dedup_key) for r in rows] == [
        (a.id, "m1"),
        (a.id, "m2"),
        (a.id, "m3"),
        (b.id, "m1"),
    ]
    assert rows[0].event_id == event_id_for(a.id, "m1")
    assert rows[0].raw == '{"k":"m1"}'
    assert rows[0].properties == {}


def test_retried_groups_keep_positions_dense_and_counts_exact(db: Database) -> None:
    """A group holding keys already logged (a client's retry) stores only the new rows, and no
    position is skipped, whichever way the writer found the duplicates."""
    with db.session() as conn:
        src, _ = source_store.create(conn, "a", "segment")
        results = []
        for n in range(0, 300, 3):  # every group repeats the one before's last key
            keys = [f"k{max(0, n - 1)}", f"k{n}", f"k{n + 1}", f"k{n + 2}"]
            results += log.append(conn, [log.Batch(src.id, 1, [ev(k) for k in keys])])
        fresh = log.append(conn, [log.Batch(src.id, 1, [ev("new-1")]), log.Batch(src.id, 1, [])])
        seqs = [r.seq for r in log.read_range(conn, 0, 10_000)]
    assert (results[0].inserted, results[0].duplicates) == (3, 1)  # k0 twice in the group
    assert all((r.inserted, r.duplicates) == (3, 1) for r in results)
    assert [(r.inserted, r.duplicates) for r in fresh] == [(1, 0), (0, 0)]
    assert seqs == list(range(1, 302))
    assert fresh[0].head == 301


def test_sqlite_appends_new_keys_without_looking_them_up(tmp_path: Path) -> None:
    """A group of new keys is one insert (no lookup, no savepoint); one that meets a logged key
    is rolled back and redone with a lookup, and the next groups look their keys up first."""
    conn = SQLiteConnection(str(tmp_path / "log.db"), "NORMAL")
    try:
        migrate(conn)
        src, _ = source_store.create(conn, "a", "segment")
        statements: list[str] = []
        conn.raw.set_trace_callback(statements.append)
        log.append(conn, [log.Batch(src.id, 1, [ev("a"), ev("b")])])
        assert not [s for s in statements if s.startswith(("SELECT dedup_key", "SAVEPOINT"))]
        statements.clear()
        (retry,) = log.append(conn, [log.Batch(src.id, 1, [ev("b"), ev("c")])])
        assert (retry.inserted, retry.duplicates) == (1, 1)
        assert "ROLLBACK" in statements  # the optimistic attempt, undone whole
        statements.clear()
        log.append(conn, [log.Batch(src.id, 1, [ev("d")])])
        assert [s for s in statements if s.startswith("SELECT dedup_key")]
        assert [r.seq for r in log.read_range(conn, 0, 10)] == [1, 2, 3, 4]
    finally:
        conn.close()


def test_large_group_commit_spans_statements(db: Database) -> None:
    with db.session() as conn:
        src, _ = source_store.create(conn, "a", "segment")
        batch = [ev(f"k{i}", properties={"i": i}) for i in range(5_000)]
        (result,) = log.append(conn, [log.Batch(src.id, 1, batch)])
        assert result.inserted == 5_000
        (again,) = log.append(conn, [log.Batch(src.id, 1, [*batch[:4500], ev("new")])])
        assert (again.inserted, again.duplicates) == (1, 4_500)
        assert log.read_range(conn, 4_999, 5_000)[0].properties == {"i": 4_999}


def test_query_filters_and_cursor_pagination(db: Database) -> None:
    with db.session() as conn:
        src, _ = source_store.create(conn, "a", "segment")
        log.append(
            conn,
            [
                log.Batch(
                    src.id,
                    1,
                    [
                        ev(
                            f"m{i}",
                            user_id=f"u{i % 3}",
                            campaign_id="c1" if i % 2 else None,
                            event_time=1_700_000_000_000 + i * 1000,
                            event=None if i == 7 else "Email Opened",
                        )
                        for i in range(10)
                    ],
                )
            ],
        )
        run_until_caught_up(conn, [LogIndex()])
        # Events after the index's cursor are found too (the unindexed tail).
        log.append(conn, [log.Batch(src.id, 2, [ev("late", user_id="u0")])])
        page, cursor = logread.query(conn, logread.EventQuery(user_id="u0", limit=2))
        assert [e.dedup_key for e in page] == ["late", "m9"]
        assert cursor
        rest, end = logread.query(conn, logread.EventQuery(user_id="u0", limit=5, cursor=cursor))
        assert [e.dedup_key for e in rest] == ["m6", "m3", "m0"]
        assert end is None
        only, _ = logread.query(conn, logread.EventQuery(campaign_id="c1", since=1_700_000_005_000))
        assert [e.dedup_key for e in only] == ["m9", "m7", "m5"]
        unmapped, _ = logread.query(conn, logread.EventQuery(unmapped=True))
        assert [e.dedup_key for e in unmapped] == ["m7"]
        asc, _ = logread.query(conn, logread.EventQuery(limit=3, ascending=True))
        assert [e.seq for e in asc] == [1, 2, 3]
    with pytest.raises(PayloadError):
        logread.decode_cursor("!!")


def test_sources_store_only_a_hash_of_the_write_key(db: Database) -> None:
    with db.session() as conn:
        src, key = source_store.create(conn, "web", "segment", secret="s3cret")
        assert conn.scalar("SELECT COUNT(*) FROM sources WHERE write_key_hash = ?", (key,)) == 0
        assert source_store.by_write_key(conn, key) == src
        assert source_store.by_write_key(conn, key + "x") is None
        with pytest.raises(ConflictError):
            source_store.create(conn, "web", "segment")
        with pytest.raises(ConflictError):
            source_store.create(conn, "other", "segment", write_key=key)
        with pytest.raises(NotFound):
            source_store.by_name(conn, "nope")
        assert [s.name for s in source_store.list_all(conn)] == ["engagehub", "web"]


def test_migrations_are_recorded_and_rerunnable(db: Database) -> None:
    with db.session() as conn:
        assert migrate(conn) == []
        versions = [r["version"] for r in conn.all("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in load_migrations(db.dialect)]
