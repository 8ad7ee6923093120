"""Processors follow the log with durable cursors; rebuilding gives the same state."""

from __future__ import annotations

from engagehub.model import IncomingEvent
from engagehub.processing import get_offset, reset, run_until_caught_up, step
from engagehub.processing.health import Follower
from engagehub.processing.log_index import LogIndex
from engagehub.processing.unmapped import UnmappedCounter
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from tests.conftest import make_source


def _events(n: int, name: str) -> list[IncomingEvent]:
    return [
        IncomingEvent(dedup_key=f"{name}-{i}", event_time=1, raw="{}", vendor_event=name)
        for i in range(n)
    ]


def test_unmapped_counts_and_rebuild(db: Database) -> None:
    counter = UnmappedCounter()
    with db.session() as conn:
        src, _ = source_store.create(conn, "a", "segment")
        log.append(conn, [log.Batch(src.id, 10, _events(5, "Order Completed"))])
        log.append(conn, [log.Batch(src.id, 20, _events(2, "Cart Viewed"))])
        cursor, head = step(conn, counter, window=3)
        assert (cursor, head) == (3, 7)
        run_until_caught_up(conn, [counter], window=3)
        assert get_offset(conn, counter.name) == 7
        rows = conn.all(
            "SELECT vendor_event, count, first_seen, last_seen FROM unmapped_events "
            "ORDER BY vendor_event"
        )
        expected = [
            {"vendor_event": "Cart Viewed", "count": 2, "first_seen": 20, "last_seen": 20},
            {"vendor_event": "Order Completed", "count": 5, "first_seen": 10, "last_seen": 10},
        ]
        assert rows == expected
        reset(conn, counter)
        assert conn.scalar("SELECT COUNT(*) FROM unmapped_events") == 0
        run_until_caught_up(conn, [counter])
        assert (
            conn.all(
                "SELECT vendor_event, count, first_seen, last_seen FROM unmapped_events "
                "ORDER BY vendor_event"
            )
            == expected
        )


def test_adapted_window_never_shrinks_below_its_floor(db: Database) -> None:
    """A round slower than ``round_s`` (any round on a loaded machine) halves the window only
    down to ``min_size``: tiny rounds would cost their fixed statements and commit each."""
    src, _ = make_source(db)
    with db.session() as conn:
        events = [
            IncomingEvent(dedup_key=f"k{i}", event_time=1, raw="{}", user_id=f"u{i}")
            for i in range(1_500)
        ]
        log.append(conn, [log.Batch(src.id, 1, events)])
        follower = Follower([LogIndex()], window=1_000, round_s=1e-9)
        follower.min_size = 300
        follower.size = 1_000
        follower.round(conn)
        assert follower.size == 300  # the elapsed time asked for less
        follower.round(conn)
        assert follower.size == 300
        follower.round(conn)
        assert follower.cursors["log_index"] == 1_500


def test_busy_rounds_take_longer_windows_while_far_behind(db: Database) -> None:
    """While ingest commits, rounds are short when close behind the head, but a processor far
    behind catches up with windows of at least 2,500 positions (a small round commits ~1.5x
    the pages per event), then goes back to short rounds near the head."""
    from engagehub.processing.runner import busy_pace, follow
    from engagehub.storage.writer import IngestSignal

    assert busy_pace(5_000, 5_000) == (0.1, 1_000)
    assert busy_pace(5_001, 5_000) == (0.3, 2_500)
    assert busy_pace(9_999, 2_000) == (0.3, 2_000)  # never beyond the configured window
    src, _ = make_source(db)
    with db.session() as conn:
        events = [
            IncomingEvent(dedup_key=f"k{i}", event_time=1, raw="{}", user_id=f"u{i}")
            for i in range(12_000)
        ]
        log.append(conn, [log.Batch(src.id, 1, events)])
    signal = IngestSignal()
    signal.committed()  # ingest is busy from the first round on
    cursors: list[int] = []

    def publish(progress: dict[str, object]) -> None:
        signal.committed()  # ingest keeps committing: busy rounds throughout
        seq = dict(progress["cursors"]).get("log_index")  # type: ignore[call-overload]
        if seq is not None and (not cursors or seq != cursors[-1]):
            cursors.append(int(seq))

    follow(
        db,
        [LogIndex()],
        window=5_000,
        wait=lambda _: False,
        publish=publish,
        stopping=lambda: bool(cursors) and cursors[-1] >= 12_000,
        ingest_busy=signal,
    )
    steps = [b - a for a, b in zip([0, *cursors], cursors, strict=False)]
    assert steps[0] == 1_000  # the head was not known yet: a short round
    assert steps[1] == 2_500  # 11,000 behind: the catch-up floor
    behind = [12_000 - c for c in cursors]
    near = [s for s, lag in zip(steps[1:], behind, strict=False) if lag <= 5_000]
    assert near
    assert near[0] == 1_000  # back near the head: short rounds again
