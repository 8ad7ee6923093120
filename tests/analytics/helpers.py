"""Building message events and feeding them through the real log and processors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.processing.log_index import LogIndex
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.taxonomy import get_taxonomy

T0 = 1_772_445_600_000  # 2026-03-02T10:00:00Z
H = 3_600_000


def ev(
    key: str,
    event: str,
    t: int,
    message_id: str | None = None,
    campaign: str | None = None,
    user: str | None = "u1",
    contact: str | None = None,
    **props: Any,
) -> IncomingEvent:
    """One canonical (or custom, when not in the taxonomy) track event."""
    canonical = get_taxonomy().events.get(event)
    properties = {k: v for k, v in props.items() if v is not None}
    return IncomingEvent(
        dedup_key=key,
        event_time=t,
        raw=orjson.dumps({"event": event, "properties": properties}).decode(),
        vendor_event=event,
        event=event if canonical else None,
        channel=canonical.channel if canonical else None,
        user_id=user,
        contact=contact,
        message_id=message_id,
        campaign_id=campaign,
        properties=properties,
    )


def feed(
    conn: Connection, source_id: int, events: Sequence[IncomingEvent], window: int = 2000
) -> None:
    """Append (duplicates dropped by the log) and run the processors to the head."""
    log.append(conn, [log.Batch(source_id, T0, list(events))])
    run_until_caught_up(conn, [LogIndex(), AnalyticsProcessor()], window)


def source_id(db: Database) -> int:
    """A segment source for direct appends."""
    from tests.conftest import make_source

    return make_source(db)[0].id


def snapshot(conn: Connection) -> tuple[list[dict[str, Any]], ...]:
    """Lifecycle rows, hourly counters and rollups, comparable across runs."""
    rows = conn.all("SELECT * FROM analytics_messages ORDER BY message_id")
    for r in rows:
        r.pop("updated_at")
    tables = [
        [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()]
        for table, order in (
            ("analytics_message_hours", "1, 2, 3"),
            ("analytics_rollups", "1, 2, 3, 4, 5, 6"),
            ("analytics_rollup_details", "1, 2, 3, 4, 5, 6, 7, 8"),
        )
    ]
    return (rows, *tables)


def clear_log(conn: Connection) -> None:
    """Empty the log so the same events can be appended again (PostgreSQL keeps dedup keys in
    their own table, next to the partitioned log)."""
    conn.execute("DELETE FROM events")
    if conn.dialect == "postgresql":
        conn.execute("DELETE FROM event_keys")
