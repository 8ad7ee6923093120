"""The partition maintenance service: months created ahead, retention applied, in any process."""

from __future__ import annotations

import logging

from engagehub.settings import Settings
from engagehub.storage import Database, locks, partitions
from engagehub.timeutil import now_ms

logger = logging.getLogger(__name__)


class PartitionMaintenance:
    """Creates next months' log partitions and drops expired ones (PostgreSQL; no-op on SQLite)."""

    name = "partition-maintenance"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval = settings.maintenance_interval
        self.last: dict[str, list[str]] = {"created": [], "dropped": []}

    def run_once(self, db: Database) -> bool:
        """One round; returns False (nothing more to do until the next interval)."""
        if db.dialect != "postgresql":
            return False
        from engagehub import registry

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
                    names = [p.name for p in registry.processors(self.settings)]
                    dropped = partitions.drop_expired(
                        conn, now, self.settings.retention_days, names
                    )
            finally:
                conn.execute("SELECT pg_advisory_unlock(?)", (locks.MAINTENANCE,))
        self.last = {"created": created, "dropped": dropped}
        if created or dropped:
            logger.info("partitions created %s, dropped %s", created, dropped)
        return False
