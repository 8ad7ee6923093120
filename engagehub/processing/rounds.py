"""Rounds: the processor contract, cursors and one round of the log (``engagehub.processing``
re-exports all of it, plus the catch-up loop).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from engagehub.errors import TransientError
from engagehub.model import StoredEvent
from engagehub.processing.window import Shard, Window
from engagehub.storage import events as log
from engagehub.storage import locks
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import where_in
from engagehub.timeutil import now_ms


@runtime_checkable
class WindowProcessor(Protocol):
    """A named consumer of the log that works on whole windows (set-based SQL, bulk state)."""

    name: str
    """Cursor name; stable forever (renaming it replays the whole log)."""

    def apply_window(self, window: Window) -> None:
        """Fold ``window`` into derived tables, inside the round's transaction (idempotence is
        not required: the cursor commits with the effects), using ``window.bounds()`` in SQL,
        ``window.rows(columns, where)`` or ``window.events(where)``."""

    def reset(self, conn: Connection) -> None:
        """Delete this processor's derived state so ``engagehub reprocess`` can rebuild it."""


class EventProcessor(Protocol):
    """The older per-event contract, still accepted (the round adapts it)."""

    name: str
    where: str | None
    """Optional SQL filter on ``events`` so the processor only reads what it uses."""
    payload: bool
    """Whether ``apply`` needs ``properties`` and ``raw`` (False reads lighter rows)."""

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Update derived tables for these (shared, read-only) events, inside the transaction."""

    def reset(self, conn: Connection) -> None:
        """Delete this processor's derived state."""


Processor = WindowProcessor | EventProcessor


def apply(processor: Processor, window: Window) -> None:
    """Run one processor on one window, whichever contract it implements."""
    if isinstance(processor, WindowProcessor):
        processor.apply_window(window)
        return
    events = window.events(processor.where, payload=getattr(processor, "payload", True))
    if events:
        processor.apply(window.conn, events)


def get_offset(conn: Connection, name: str, lock: bool = False) -> int:
    """The cursor of ``name`` (0 when new); ``lock`` holds it for this transaction on PostgreSQL."""
    conn.execute(
        "INSERT INTO processor_offsets (name, seq, updated_at) VALUES (?, 0, ?) "
        "ON CONFLICT (name) DO NOTHING",
        (name, now_ms()),
    )
    sql = "SELECT seq FROM processor_offsets WHERE name = ?"
    if lock and conn.dialect == "postgresql":
        sql += " FOR UPDATE"
    return int(conn.scalar(sql, (name,)) or 0)


def set_offset(conn: Connection, name: str, seq: int) -> None:
    """Move the cursor of ``name`` to ``seq``."""
    conn.execute(
        "UPDATE processor_offsets SET seq = ?, updated_at = ? WHERE name = ?",
        (seq, now_ms(), name),
    )


@dataclass
class Round:
    """What one round did: cursors after it, the log head, and processors that failed."""

    head: int
    cursors: dict[str, int] = field(default_factory=dict)
    failed: dict[str, tuple[int, int, BaseException]] = field(default_factory=dict)
    """name -> (cursor, upto of the failed window, exception)."""
    busy: list[str] = field(default_factory=list)
    """Processors another process was applying (PostgreSQL, ``wait=False``)."""
    applied: int = 0
    """Log positions folded in, summed over processors."""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds of this thread per processor (or shard) in this round; ``ROUND_CPU`` is the
    rest of the round: locks, cursors, log head and the commit."""


ROUND_CPU = "(round)"
"""``Round.cpu`` key of a round's own statements (what does not belong to one processor)."""


@dataclass(frozen=True)
class Unit:
    """What one cursor follows: a processor, or one shard of it (``name#index/count``)."""

    processor: Processor
    shard: Shard | None = None

    @property
    def name(self) -> str:
        """The cursor's row name."""
        if self.shard is None or self.shard.count == 1:
            return self.processor.name
        return f"{self.processor.name}#{self.shard.index}/{self.shard.count}"


def _cursors(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """Cursors of ``names``, locked on PostgreSQL; a new processor starts at 0, but a shard's
    row is only made by ``shards.reshard`` (a missing one is another shard layout's).

    Read first, made only when missing (once per processor): the insert-if-missing statement
    for every name cost ~0.3 ms a round.
    """
    found = _read_cursors(conn, names)
    new = [n for n in names if n not in found and "#" not in n]
    if new:
        now = now_ms()
        conn.executemany(
            "INSERT INTO processor_offsets (name, seq, updated_at) SELECT ?, 0, ? WHERE NOT "
            "EXISTS (SELECT 1 FROM processor_offsets WHERE name = ? OR name LIKE ?) "
            "ON CONFLICT (name) DO NOTHING",
            [(n, now, n, n + "#%") for n in new],
        )
        found.update(_read_cursors(conn, new))
    return found


def _read_cursors(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """The cursors of ``names`` that exist (locked in name order on PostgreSQL)."""
    sql = f"SELECT name, seq FROM processor_offsets WHERE {where_in('name', names)}"
    if conn.dialect == "postgresql":
        sql += " ORDER BY name FOR UPDATE"
    return {str(n): int(s) for n, s in conn.execute(sql, list(names)).fetchall()}


def _lock(conn: Connection, names: Sequence[str], wait: bool) -> tuple[list[str], list[str]]:
    """PostgreSQL: hold each processor's advisory lock for this transaction; (got, busy)."""
    if conn.dialect != "postgresql":
        return list(names), []
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got: list[str] = []
    busy: list[str] = []
    for name in sorted(names):  # one order everywhere: no lock cycles between workers
        ok = conn.scalar(f"SELECT {fn}(?, hashtext(?))::text", (locks.PROCESSOR_CLASS, name))
        (busy if ok == "false" else got).append(name)
    return got, busy


class _Isolate(Exception):
    """A processor failed in a round without savepoints: roll it all back, run it again with one
    savepoint per processor."""


def run_round(
    conn: Connection,
    processors: Sequence[Processor | Unit],
    window: int,
    wait: bool = True,
    limits: dict[str, int] | None = None,
) -> Round:
    """Apply the next window of the log to every processor (or shard), in one transaction.

    The window starts at the lowest cursor; each processor sees it from its own cursor
    (``Window.view``), at most ``limits[name]`` positions (a failing processor is narrowed down
    to the event that fails). Cursors move in the same transaction as the effects.

    A round first runs every processor without a savepoint: a savepoint journals the first
    change of every page it touches (offline, ~10% of the processors' CPU per event). Should a
    processor fail, the whole round rolls back and runs again with each processor in its own
    savepoint, so the failing one rolls back alone and the others' work commits once.
    """
    units = {u.name: u for u in (p if isinstance(p, Unit) else Unit(p) for p in processors)}
    cpu: dict[str, float] = {}
    try:
        return _round(conn, units, window, wait, limits or {}, cpu, isolated=False)
    except _Isolate:
        return _round(conn, units, window, wait, limits or {}, cpu, isolated=True)


def _round(
    conn: Connection,
    units: dict[str, Unit],
    window: int,
    wait: bool,
    limits: dict[str, int],
    cpu: dict[str, float],
    isolated: bool,
) -> Round:
    """One attempt at a round (``run_round``); ``cpu`` adds up over attempts."""
    started = time.thread_time()
    spent = sum(cpu.values())
    try:
        with conn.transaction():
            got, busy = _lock(conn, list(units), wait)
            if not got:
                return Round(log.head(conn), {}, {}, busy, cpu=cpu)
            cursors = _cursors(conn, got)
            busy += [n for n in got if n not in cursors]
            names = [n for n in units if n in cursors]  # registry order
            head = log.head(conn)
            result = Round(head, dict(cursors), {}, busy, cpu=cpu)
            if not names:
                return result
            low = min(cursors.values())
            upto = min(head, low + window)
            if upto <= low:
                return result
            shared = Window(conn, low, upto)
            moved: list[tuple[int, int, str]] = []
            for name in names:
                cursor = cursors[name]
                unit = units[name]
                mine = min(upto, cursor + limits.get(name, window))
                if mine <= cursor:
                    continue
                view = Window(conn, cursor, mine, unit.shard, shared._cache)
                before = time.thread_time()
                try:
                    if isolated:
                        with conn.transaction():  # a savepoint: a failure rolls back this one
                            apply(unit.processor, view)
                    else:
                        apply(unit.processor, view)
                except TransientError:
                    raise  # the database itself is unavailable: the whole round is retried
                except Exception as exc:
                    if not isolated:
                        raise _Isolate from exc
                    result.failed[name] = (cursor, mine, exc)
                    continue
                finally:
                    cpu[name] = cpu.get(name, 0.0) + time.thread_time() - before
                moved.append((mine, now_ms(), name))
                result.cursors[name] = mine
                result.applied += mine - cursor
            conn.executemany(
                "UPDATE processor_offsets SET seq = ?, updated_at = ? WHERE name = ?", moved
            )
            if moved:  # processors may have appended (consent's companions): the next round's work
                result.head = log.head(conn)
    finally:
        mine_s = time.thread_time() - started - (sum(cpu.values()) - spent)
        cpu[ROUND_CPU] = cpu.get(ROUND_CPU, 0.0) + mine_s
    return result


def step(
    conn: Connection,
    processor: Processor,
    window: int,
    wait: bool = True,
    read: Any = None,
) -> tuple[int, int]:
    """One processor's round of at most ``window`` positions; returns (cursor, log head).

    Raises what the processor raised (its cursor stays). ``wait=False`` on PostgreSQL skips a
    processor another process is applying and returns its committed cursor unchanged.
    """
    del read  # the window reads for every processor now
    result = run_round(conn, [processor], window, wait)
    if processor.name in result.failed:
        raise result.failed[processor.name][2]
    if processor.name in result.busy:
        committed = conn.scalar(
            "SELECT seq FROM processor_offsets WHERE name = ?", (processor.name,)
        )
        return int(committed or 0), result.head
    return result.cursors[processor.name], result.head


def reset(conn: Connection, processor: Processor) -> None:
    """Forget a processor's state and cursor; the next run rebuilds it from the whole log."""
    pattern = (processor.name, processor.name + "#%")
    with conn.transaction():
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM processor_offsets WHERE name = ? OR name LIKE ?", pattern
            ).fetchall()
        ] or [processor.name]
        if conn.dialect == "postgresql":  # wait for workers applying a window right now
            for name in sorted(names):
                conn.execute(
                    "SELECT pg_advisory_xact_lock(?, hashtext(?))", (locks.PROCESSOR_CLASS, name)
                )
        processor.reset(conn)
        get_offset(conn, names[0])
        conn.execute(  # every shard of it, when it is sharded
            "UPDATE processor_offsets SET seq = 0, updated_at = ? WHERE name = ? OR name LIKE ?",
            (now_ms(), *pattern),
        )


class SharedWindow:
    """Reads ``(after, upto)`` ranges through one cached :class:`Window` (older call sites)."""

    def __init__(self) -> None:
        self._window: Window | None = None

    def read(
        self, conn: Connection, after: int, upto: int, where: str | None, **_: Any
    ) -> list[StoredEvent]:
        """Events with ``after < seq <= upto`` matching ``where``, in log order."""
        w = self._window
        if w is None or (w.after, w.upto) != (after, upto) or w.conn is not conn:
            w = self._window = Window(conn, after, upto)
        return w.events(where)
