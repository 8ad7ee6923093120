"""Counts event names the taxonomy does not know, per source, so they can be mapped later."""

from __future__ import annotations

from collections.abc import Sequence

from engagehub.model import StoredEvent
from engagehub.storage.base import Connection


class UnmappedCounter:
    """Derived table ``unmapped_events``: how often, first and last seen."""

    name = "unmapped"
    where: str | None = "event IS NULL AND type = 'track'"
    payload = False

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Fold this batch into per-name counters (one upsert per name)."""
        folded: dict[tuple[int, str], list[int]] = {}
        for ev in events:
            key = (ev.source_id, ev.vendor_event or "")
            entry = folded.get(key)
            if entry is None:
                folded[key] = [1, ev.received_at, ev.received_at]
            else:
                entry[0] += 1
                entry[1] = min(entry[1], ev.received_at)
                entry[2] = max(entry[2], ev.received_at)
        conn.executemany(
            "INSERT INTO unmapped_events (source_id, vendor_event, count, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_id, vendor_event) DO UPDATE SET "
            "count = unmapped_events.count + excluded.count, "
            f"first_seen = {conn.least}(unmapped_events.first_seen, excluded.first_seen), "
            f"last_seen = {conn.greatest}(unmapped_events.last_seen, excluded.last_seen)",
            [(s, name, c, first, last) for (s, name), (c, first, last) in folded.items()],
        )

    def reset(self, conn: Connection) -> None:
        """Drop the counters."""
        conn.execute("DELETE FROM unmapped_events")
