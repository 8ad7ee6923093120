"""event_index: posting lists per key and window, read back by key; erasure removes positions."""

from __future__ import annotations

import random
from typing import Any

import pytest

from engagehub.model import IncomingEvent
from engagehub.storage import Database, event_index, followers, logread
from engagehub.storage.event_index import (
    FOLLOWER,
    KEYED_COLUMNS,
    indexed_upto,
    key_hash,
    postings,
)


def test_postings_group_a_window_by_key_in_log_order() -> None:
    """One list per distinct non-empty key, positions in log order; empty values are no key."""
    rows = [(5, "u1", None, "m1", "c1", "", "Email Sent"), (7, "u1", "a1", "m2", "c1", None, "")]
    got = postings(rows)
    assert got == {
        key_hash("u", "u1"): [5, 7],
        key_hash("m", "m1"): [5],
        key_hash("m", "m2"): [7],
        key_hash("c", "c1"): [5, 7],
        key_hash("n", "Email Sent"): [5],
        key_hash("a", "a1"): [7],
    }


def _by_row(rows: list[tuple[Any, ...]]) -> dict[int, list[int]]:
    """The plain definition: walk the rows in log order, append each position to its keys."""
    out: dict[int, list[int]] = {}
    for seq, *values in rows:
        for kind, value in zip(KEYED_COLUMNS.values(), values, strict=True):
            if value:
                out.setdefault(event_index.key_hash(kind, value), []).append(seq)
    return out


def test_postings_are_the_row_by_row_lists_even_when_keys_collide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grouped column by column, the lists are exactly the row-by-row ones: with real hashes,
    and with a hash that makes many keys (of different kinds) share a list."""
    rng = random.Random(7)
    rows = [
        (seq, *(rng.choice(["", None, "a", "b", "c", "d", "e"]) for _ in KEYED_COLUMNS))
        for seq in sorted(rng.sample(range(1, 10_000), 400))
    ]
    assert postings(rows) == _by_row(rows)
    monkeypatch.setattr(event_index, "key_hash", lambda kind, value: (ord(kind) + ord(value)) % 2)
    collided = postings(rows)
    assert set(collided) == {0, 1}  # every key fell into two lists
    assert collided == _by_row(rows)
    assert all(v == sorted(v) for v in collided.values())
    assert postings([]) == {}


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
