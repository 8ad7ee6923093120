"""Shards: a processor split by a key into N cursors, so N ``engagehub worker`` processes divide
its work while events of one key (person, contact, message) stay in log order.

A processor opts in with ``shard_key`` (an SQL expression over ``events``; ``@`` stands for the
table alias). Shard ``i`` of ``n`` owns the events whose key hashes to ``i`` and has its own cursor
row ``name#i/n``. Changing ``ENGAGEHUB_PROCESSOR_SHARDS`` reshards without losing or repeating an
event: every old shard is first brought to the same position P (the furthest), then — in one
transaction, holding every old shard's lock — the old rows are replaced by the new ones at P.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engagehub.processing.rounds import Processor, Unit, run_round
from engagehub.processing.window import Shard
from engagehub.storage import locks
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

logger = logging.getLogger(__name__)


def units(processors: Sequence[Processor], count: int) -> list[Unit]:
    """Every cursor to follow: one per unsharded processor, ``count`` per shardable one."""
    out: list[Unit] = []
    for p in processors:
        key = getattr(p, "shard_key", None)
        if key and count > 1:
            out.extend(Unit(p, Shard(key, count, i)) for i in range(count))
        else:
            out.append(Unit(p))
    return out


def layout(conn: Connection, processors: Sequence[Processor | Unit]) -> list[Unit | Processor]:
    """The units the database has cursors for: a processor that workers sharded is followed
    shard by shard (a CLI catch-up or ``reprocess`` must not add an unsharded cursor)."""
    out: list[Unit | Processor] = []
    for p in processors:
        if isinstance(p, Unit):
            out.append(p)
            continue
        rows = _rows(conn, p.name)
        if any("#" in n for n in rows):
            out.extend(_units_named(p, rows))
        else:
            out.append(p)
    return out


def base_name(cursor: str) -> str:
    """``analytics#2/4`` -> ``analytics``."""
    return cursor.split("#", 1)[0]


def processor_positions(conn: Connection) -> dict[str, int]:
    """Each processor's position: the lowest of its shards' cursors."""
    out: dict[str, int] = {}
    for name, seq in conn.execute(
        "SELECT name, seq FROM processor_offsets WHERE kind = 'processor'"
    ).fetchall():
        base = base_name(str(name))
        out[base] = min(out.get(base, int(seq)), int(seq))
    return out


def _rows(conn: Connection, name: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT name, seq FROM processor_offsets WHERE name = ? OR name LIKE ?",
        (name, name + "#%"),
    ).fetchall()
    return {str(n): int(s) for n, s in rows}


def reshard(conn: Connection, processor: Processor, count: int, window: int = 5000) -> bool:
    """Make ``processor``'s cursors the ``count`` shards wanted; True when they changed."""
    wanted = [u.name for u in units([processor], count)]
    current = _rows(conn, processor.name)
    if not current or set(current) == set(wanted):
        if not current and len(wanted) > 1:
            _replace(conn, processor.name, {}, wanted, 0)
            return True
        return False
    old = [u for u in _units_named(processor, current) if u.name in current]
    while True:
        target = max(_rows(conn, processor.name).values())
        behind = {n: target - s for n, s in _rows(conn, processor.name).items() if s < target}
        if not behind:
            break
        # Bring the lagging old shards up to the furthest one (never past it).
        result = run_round(conn, [u for u in old if u.name in behind], window, limits=behind)
        for _cursor, _upto, exc in result.failed.values():
            raise exc  # a failing shard must be fixed (or its event skipped) before resharding
    with conn.transaction():
        for name in sorted(set(current) | set(wanted)):
            if conn.dialect == "postgresql":
                conn.execute(
                    "SELECT pg_advisory_xact_lock(?, hashtext(?))", (locks.PROCESSOR_CLASS, name)
                )
        rows = _rows(conn, processor.name)
        if len(set(rows.values())) != 1:
            return reshard(conn, processor, count, window)  # a worker moved one meanwhile
        position = next(iter(rows.values()))
        _replace(conn, processor.name, rows, wanted, position)
    logger.warning(
        "processor %s resharded from %d to %d cursors at log position %d",
        processor.name,
        len(rows),
        len(wanted),
        position,
    )
    return True


def _units_named(processor: Processor, names: dict[str, int]) -> list[Unit]:
    """The units behind existing cursor rows (whatever shard count they were made with)."""
    key = getattr(processor, "shard_key", None) or "seq"
    out = []
    for name in names:
        if "#" not in name:
            out.append(Unit(processor))
            continue
        index, count = name.split("#", 1)[1].split("/")
        out.append(Unit(processor, Shard(key, int(count), int(index))))
    return out


def _replace(
    conn: Connection, name: str, old: dict[str, int], wanted: list[str], position: int
) -> None:
    with conn.transaction():
        conn.execute(
            "DELETE FROM processor_offsets WHERE name = ? OR name LIKE ?", (name, name + "#%")
        )
        conn.executemany(
            "INSERT INTO processor_offsets (name, seq, updated_at, kind) "
            "VALUES (?, ?, ?, 'processor')",
            [(n, position, now_ms()) for n in wanted],
        )
