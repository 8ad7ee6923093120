"""Processors follow the log with durable cursors; rebuilding gives the same state."""

from __future__ import annotations

from engagehub.model import IncomingEvent
from engagehub.processing import get_offset, reset, run_until_caught_up, step
from engagehub.processing.unmapped import UnmappedCounter
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage import sources as source_store


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
