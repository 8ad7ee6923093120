"""Counts event names the taxonomy does not know, per source, so they can be mapped later."""

from __future__ import annotations

from engagehub.processing.window import Window
from engagehub.storage.base import Connection


class UnmappedCounter:
    """Derived table ``unmapped_events``: how often, first and last seen (one statement)."""

    name = "unmapped"
    shard_key = "seq"  # counts, minimum and maximum add up in any order

    def apply_window(self, window: Window) -> None:
        """Fold the window into per-name counters inside the database."""
        conn = window.conn
        cond, params = window.bounds()
        conn.execute(
            "INSERT INTO unmapped_events (source_id, vendor_event, count, first_seen, last_seen) "
            "SELECT source_id, COALESCE(vendor_event, ''), COUNT(*), MIN(received_at), "
            f"MAX(received_at) FROM events WHERE {cond} AND event IS NULL AND type = 'track' "
            "GROUP BY source_id, COALESCE(vendor_event, '') "
            "ON CONFLICT (source_id, vendor_event) DO UPDATE SET "
            "count = unmapped_events.count + excluded.count, "
            f"first_seen = {conn.least}(unmapped_events.first_seen, excluded.first_seen), "
            f"last_seen = {conn.greatest}(unmapped_events.last_seen, excluded.last_seen)",
            params,
        )

    def reset(self, conn: Connection) -> None:
        """Drop the counters."""
        conn.execute("DELETE FROM unmapped_events")
