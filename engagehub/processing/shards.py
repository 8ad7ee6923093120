"""Shards: a processor split by a key into N cursors, so N ``engagehub worker`` processes divide
its work while events of one key (person, contact, message) stay in log order.

A processor opts in with ``shard_key`` (an SQL expression over ``events``; ``@`` stands for the
table alias). Shard ``i`` of ``n`` owns the events whose key hashes to ``i`` and has its own cursor
row ``name#i/n``. Changing ``ENGAGEHUB_PROCESSOR_SHARDS`` reshards without losing or repeating an
event: every old shard is first brought to the same position P (the furthest), then — in one
transaction, holding every old shard's lock — the old rows are replaced by the new ones at P.

A processor whose work is not all per key (analytics: goal events and provider-id aliases cross
messages) also implements ``apply_cross(window)``: when sharded, that part runs as one more cursor,
``name#cross/n``, the **cross-shard pass**, which never runs beside one of its shards (each shard
holds the processor's shared lock for its round, the pass holds it exclusively), so each sees the
other's committed state. Its cursor is resharded with the shards'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from engagehub.processing.rounds import Processor, Unit, apply, get_offset, run_round
from engagehub.processing.window import Shard, Window
from engagehub.storage import locks
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

logger = logging.getLogger(__name__)


CROSS = "cross"
"""The shard index of a cross-shard pass's cursor (``analytics#cross/4``)."""


@runtime_checkable
class CrossKeyed(Protocol):
    """A shardable processor with work that is not per key (its cross-shard pass)."""

    name: str

    def apply_cross(self, window: Window) -> None:
        """Apply the part of ``window`` that crosses keys (the whole window, every key)."""

    def cross_pending(self, window: Window) -> bool:
        """Whether ``window`` may hold cross-key work (False: the pass moves on without
        keeping the shards out). A cheap over-estimate is fine."""


class ShardPass:
    """One shard of a processor that has a cross-shard pass: never runs beside that pass."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor
        self.name = processor.name

    def apply_window(self, window: Window) -> None:
        """Apply the shard's window holding the processor's lock shared (shards run together)."""
        hold(window.conn, self.name, exclusive=False)
        apply(self.processor, window)

    def reset(self, conn: Connection) -> None:
        """Forget the processor's state (all of it: shards share its tables)."""
        self.processor.reset(conn)


class CrossPass:
    """The unsharded part of a sharded processor (what crosses keys), alone: no shard beside it."""

    def __init__(self, processor: Processor, count: int) -> None:
        self.processor = processor
        self.name = f"{processor.name}#{CROSS}/{count}"

    def apply_window(self, window: Window) -> None:
        """Wait for running shards to commit, keep them out, then apply the cross-key part (a
        window with none moves the cursor only: the shards need not stop for it)."""
        processor = self.processor
        assert isinstance(processor, CrossKeyed), processor.name
        if not processor.cross_pending(window):
            return
        hold(window.conn, processor.name, exclusive=True)
        processor.apply_cross(window)

    def reset(self, conn: Connection) -> None:
        """Forget the processor's state (the pass writes the processor's tables)."""
        self.processor.reset(conn)


def hold(conn: Connection, name: str, exclusive: bool) -> None:
    """PostgreSQL: take processor ``name``'s shard lock for this transaction (shards share it,
    the cross-shard pass holds it alone). Nobody waits for it while holding another advisory lock
    it could need (shards hold only their own), so it cannot close a lock cycle."""
    if conn.dialect != "postgresql":
        return  # SQLite: one writer at a time already
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(f"SELECT {fn}(?, hashtext(?))", (locks.PROCESSOR_CLASS, name + "#shards"))


def crosses(processor: Processor) -> bool:
    """Whether ``processor`` has a cross-shard pass (work that is not per key)."""
    return isinstance(processor, CrossKeyed)


def units(processors: Sequence[Processor], count: int) -> list[Unit]:
    """Every cursor to follow: one per unsharded processor, ``count`` per shardable one (and its
    cross-shard pass, if it has one)."""
    out: list[Unit] = []
    for p in processors:
        key = getattr(p, "shard_key", None)
        if key and count > 1:
            out.extend(_shard_units(p, key, count, range(count), crosses(p)))
        else:
            out.append(Unit(p))
    return out


def _shard_units(
    p: Processor, key: str, count: int, indexes: Iterable[int], cross: bool
) -> list[Unit]:
    runs: Processor = ShardPass(p) if crosses(p) else p
    out = [Unit(runs, Shard(key, count, i)) for i in indexes]
    if cross:
        out.append(Unit(CrossPass(p, count)))
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


def reshard_all(
    conn: Connection, processors: Sequence[Processor], count: int, window: int = 5000
) -> None:
    """Every shardable processor's cursors made ``count`` shards: what each ``engagehub
    worker`` and ``serve``'s processors do at start (a no-op when the count is unchanged)."""
    for processor in processors:
        if getattr(processor, "shard_key", None):
            reshard(conn, processor, count, window)


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
    for name in sorted(names):  # shards before their cross-shard pass, as ``units`` lists them
        if "#" not in name:
            out.append(Unit(processor))
            continue
        index, count = name.split("#", 1)[1].split("/")
        if index == CROSS:
            out.append(Unit(CrossPass(processor, int(count))))
        else:
            out.extend(_shard_units(processor, key, int(count), [int(index)], False))
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


def position(conn: Connection, name: str) -> int:
    """Processor ``name``'s position: its lowest cursor (every shard's and pass's), 0 when new."""
    return min(_rows(conn, name).values(), default=0)


def hold_rounds(conn: Connection, name: str) -> int:
    """Keep every round of processor ``name`` out until this transaction ends (its cursor rows
    locked, in name order, as erasure locks them) and return how far its cross-key work went:
    the cross-shard pass's cursor when sharded, else the processor's one cursor (made if new).

    For changes outside the log to state a processor derives (analytics goals): events up to
    that position are the caller's to apply, later ones the processor's.
    """
    if not _rows(conn, name):
        get_offset(conn, name)
    sql = "SELECT name, seq FROM processor_offsets WHERE name = ? OR name LIKE ? ORDER BY name"
    if conn.dialect == "postgresql":
        sql += " FOR UPDATE"
    rows = {str(n): int(s) for n, s in conn.execute(sql, (name, name + "#%")).fetchall()}
    cross = [s for n, s in rows.items() if n.split("#", 1)[-1].startswith(CROSS + "/")]
    return cross[0] if cross else rows.get(name, min(rows.values()))
