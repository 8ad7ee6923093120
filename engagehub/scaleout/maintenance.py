"""The partition maintenance service: months created ahead, retention applied, in any process."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engagehub.settings import Settings
from engagehub.storage import Database, locks, partitions
from engagehub.timeutil import now_ms

logger = logging.getLogger(__name__)


class PartitionMaintenance:
    """Creates next months' log partitions and drops expired ones (PostgreSQL; no-op on SQLite)."""

    name = "partition-maintenance"

    def __init__(self, settings: Settings, followers: Sequence[str] = ()) -> None:
        self.settings = settings
        # Processors that must have passed a partition before retention drops it (registry).
        self.followers = list(followers)
        self.interval = settings.maintenance_interval
        self.last: dict[str, list[str]] = {"created": [], "dropped": []}

    def run_once(self, db: Database) -> bool:
        """One round; returns False (nothing more to do until the next interval)."""
        if db.dialect != "postgresql":
            return False
        with db.session() as conn:
            if not partitions.is_partitioned(conn):
                return False
            if not conn.scalar("SELECT pg_try_advisory_lock(?)", (locks.MAINTENANCE,)):
                return False
            try:
                now = now_ms()
                created = partitions.create_ahead(conn, now, self.settings.partitions_ahead)
                dropped: list[str] = []
                if self.settings.retention_days is not None:
                    dropped = partitions.drop_expired(
                        conn, now, self.settings.retention_days, self.followers
                    )
            finally:
                conn.execute("SELECT pg_advisory_unlock(?)", (locks.MAINTENANCE,))
        self.last = {"created": created, "dropped": dropped}
        if created or dropped:
            logger.info("partitions created %s, dropped %s", created, dropped)
        return False
