"""Monthly partitions of the PostgreSQL log: created ahead of time, dropped whole by retention.

The log is partitioned by ``received_at`` (UTC month, ``events_pYYYYMM``). Appends make sure
the partition of their month exists (a rare catalog check, cached per connection), the
maintenance service creates the next months ahead, and retention drops partitions whose whole
month is older than ``ENGAGEHUB_RETENTION_DAYS`` once every processor has applied them. Their
dedup keys go with them, so a vendor replaying an event older than the retention is stored again.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from engagehub.storage import locks
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import marks

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^events_p(\d{4})(\d{2})$")
_DAY_MS = 86_400_000
# Connections whose partitions we already checked: connection -> month starts (ms) known to exist.
_known: weakref.WeakKeyDictionary[Connection, set[int]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Partition:
    """One monthly partition: rows with ``start <= received_at < end`` (UTC ms)."""

    name: str
    start: int
    end: int


def month_start(ms: int) -> int:
    """Start of the UTC month containing ``ms``, in ms."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp() * 1000)


def add_months(start: int, months: int) -> int:
    """Start of the month ``months`` after the month starting at ``start``."""
    dt = datetime.fromtimestamp(start / 1000, UTC)
    index = dt.year * 12 + dt.month - 1 + months
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def partition_for(ms: int) -> Partition:
    """The partition that holds ``received_at = ms``."""
    start = month_start(ms)
    dt = datetime.fromtimestamp(start / 1000, UTC)
    return Partition(f"events_p{dt.year:04d}{dt.month:02d}", start, add_months(start, 1))


def is_partitioned(conn: Connection) -> bool:
    """True on PostgreSQL once migration 600 made ``events`` a partitioned table."""
    if conn.dialect != "postgresql":
        return False
    kind = conn.scalar("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")
    return bool(kind == "p")


def existing(conn: Connection) -> list[Partition]:
    """The log's partitions, oldest first."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('events')"
    ).fetchall()
    out = []
    for (name,) in rows:
        match = _NAME.match(name)
        if match:
            start = int(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC).timestamp() * 1000)
            out.append(Partition(name, start, add_months(start, 1)))
    return sorted(out, key=lambda p: p.start)


def ensure(conn: Connection, times_ms: Iterable[int]) -> None:
    """Make sure a partition exists for each of these ``received_at`` values."""
    known = _known.setdefault(conn, set())
    wanted = {month_start(ms) for ms in times_ms} - known
    if not wanted:
        return
    present = {p.start for p in existing(conn)}
    for start in sorted(wanted - present):
        create(conn, partition_for(start))
    known.update(wanted)


def create(conn: Connection, partition: Partition) -> None:
    """Create one partition (idempotent)."""
    conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{partition.name}" PARTITION OF events '
        f"FOR VALUES FROM ({partition.start}) TO ({partition.end})"
    )


def create_ahead(conn: Connection, now_ms: int, months: int) -> list[str]:
    """Create this month's partition and the next ``months``; returns those created."""
    present = {p.start for p in existing(conn)}
    created = []
    first = month_start(now_ms)
    for i in range(months + 1):
        start = add_months(first, i)
        if start not in present:
            partition = partition_for(start)
            create(conn, partition)
            created.append(partition.name)
    return created


def _passed(conn: Connection, processors: Sequence[str], last: int) -> bool:
    """Whether every follower of the log is at or past ``last`` (and every processor started)."""
    from engagehub.storage import followers

    if processors:
        known = conn.scalar(
            "SELECT COUNT(*) FROM processor_offsets WHERE name IN (" + marks(processors) + ")",
            list(processors),
        )
        if int(known or 0) < len(processors):
            return False
    slowest = followers.slowest(conn)
    return slowest is None or slowest >= last


def drop_expired(
    conn: Connection, now_ms: int, retention_days: int, processors: Sequence[str]
) -> list[str]:
    """Drop partitions older than the retention that every follower has passed (processors,
    destinations, export targets and queued dead-letter replays: one cursor table).

    Their dedup keys are deleted in the same transaction, under the append lock, so the log and
    ``event_keys`` never disagree. Returns the names dropped.
    """
    cutoff = now_ms - retention_days * _DAY_MS
    dropped = []
    for partition in existing(conn):
        if partition.end > cutoff:
            break
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(?)", (locks.APPEND,))
            last = conn.scalar(f'SELECT MAX(seq) FROM "{partition.name}"')
            if last is not None and not _passed(conn, processors, int(last)):
                logger.warning(
                    "retention: keeping %s until every follower (processors, destinations, "
                    "export targets) has passed it",
                    partition.name,
                )
                break
            conn.execute(
                f'DELETE FROM event_keys k USING "{partition.name}" e '
                "WHERE k.source_id = e.source_id AND k.dedup_key = e.dedup_key"
            )
            conn.execute(f'DROP TABLE "{partition.name}"')
        _known.pop(conn, None)
        dropped.append(partition.name)
    return dropped
