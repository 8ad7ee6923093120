"""event_index keys: the hash computed in SQL (both backends) is the one readers compute."""

from __future__ import annotations

from engagehub.model import IncomingEvent
from engagehub.storage import Database, followers, logread
from engagehub.storage.event_index import FOLLOWER, KEYED_COLUMNS, indexed_upto, key_hash, key_sql

VALUES = ["u1", "alice@example.com", "+15555550100", "ünï-ç0de", "x" * 300]


def test_sql_hash_equals_python_hash(db: Database) -> None:
    with db.session() as conn:
        for kind in KEYED_COLUMNS.values():
            for value in VALUES:
                got = conn.scalar(f"SELECT {key_sql(conn, kind, '?')}", (value,))
                assert int(got) == key_hash(kind, value), (kind, value)


def test_indexed_upto_is_the_slowest_shard(db: Database) -> None:
    with db.session() as conn:
        assert indexed_upto(conn) == 0
        with conn.transaction():
            followers.advance(conn, "processor", f"{FOLLOWER}#0/2", 40)
            followers.advance(conn, "processor", f"{FOLLOWER}#1/2", 25)
        assert indexed_upto(conn) == 25


def test_posting_lists_answer_every_key_and_erasure_removes_positions(db: Database) -> None:
    """One row per key and window; queries find every position; ``forget`` drops some."""
    from engagehub.processing import run_until_caught_up
    from engagehub.processing.log_index import LogIndex
    from engagehub.storage import event_index
    from engagehub.storage import events as log
    from tests.conftest import make_source

    src, _ = make_source(db)
    evs = [
        IncomingEvent(
            type="track",
            dedup_key=f"p{i}",
            vendor_event="Email Opened",
            event="Email Opened",
            channel="email",
            user_id=f"user-{i % 3}",
            contact=f"c{i % 2}@example.com",
            message_id=f"m{i // 4}",
            event_time=1000 + i,
            raw="{}",
        )
        for i in range(24)
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, 10, evs)])
        run_until_caught_up(conn, [LogIndex()], window=10)
        rows = int(conn.scalar("SELECT COUNT(*) FROM event_index"))
        pairs = event_index.pairs(conn)
        assert len(pairs) == 24 * 4  # user, contact, message and name of each event
        assert rows < len(pairs)  # lists, not a row per key and event
        found, _ = logread.query(conn, logread.EventQuery(user_id="user-1", limit=100))
        assert sorted(e.dedup_key for e in found) == sorted(f"p{i}" for i in range(1, 24, 3))
        stored = log.read_range(conn, 0, 24)
        with conn.transaction():
            assert event_index.forget(conn, [e for e in stored if e.user_id == "user-1"]) == 32
        assert len(event_index.pairs(conn)) == 64
        assert not {s for _, s in event_index.pairs(conn)} & {
            e.seq for e in stored if e.user_id == "user-1"
        }
        kept, _ = logread.query(conn, logread.EventQuery(message_id="m0", limit=100))
        assert sorted(e.dedup_key for e in kept) == ["p0", "p2", "p3"]  # p1 left m0's list too
