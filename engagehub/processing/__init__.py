"""Processors: idempotent consumers of the event log, each following it with a durable cursor.

A processor reads the log after its cursor, updates its derived tables and advances the cursor
in the same transaction, so a crash replays a batch and updates must be idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from engagehub.model import StoredEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

__all__ = ["Processor", "get_offset", "reset", "run_until_caught_up", "set_offset", "step"]


class Processor(Protocol):
    """A named consumer of the log."""

    name: str
    """Cursor name; stable forever (renaming it replays the whole log)."""
    where: str | None
    """Optional SQL filter on ``events`` so the processor only reads what it uses."""
    payload: bool
    """Whether ``apply`` needs ``properties`` and ``raw`` (False reads lighter rows)."""

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Update derived tables for these events (idempotently); runs inside the transaction.

        The events are shared with the other processors of a catch-up: treat them as read-only.
        """

    def reset(self, conn: Connection) -> None:
        """Delete this processor's derived state so ``engagehub reprocess`` can rebuild it."""


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


# Advisory lock class of processor cursors on PostgreSQL (second key: hashtext(name)).
PROCESSOR_LOCK_CLASS = 0x70726F63  # "proc"


Reader = Callable[..., list[StoredEvent]]
"""``log.read_range``'s signature: (conn, after, upto, where, payload=...)."""


def step(
    conn: Connection,
    processor: Processor,
    window: int,
    wait: bool = True,
    read: Reader = log.read_range,
) -> tuple[int, int]:
    """Apply at most ``window`` log positions; returns (new cursor, log head).

    On PostgreSQL one process at a time advances a cursor (an advisory lock per processor, then
    the cursor row ``FOR UPDATE``). ``wait=False`` skips a processor another process is applying
    right now and returns its committed cursor unchanged, so workers never queue behind each other.
    """
    with conn.transaction():
        if conn.dialect == "postgresql":
            lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
            got = conn.scalar(
                f"SELECT {lock}(?, hashtext(?))::text", (PROCESSOR_LOCK_CLASS, processor.name)
            )
            if got == "false":
                committed = conn.scalar(
                    "SELECT seq FROM processor_offsets WHERE name = ?", (processor.name,)
                )
                return int(committed or 0), log.head(conn)
        cursor = get_offset(conn, processor.name, lock=True)
        head = log.head(conn)
        upto = min(head, cursor + window)
        if upto <= cursor:
            return cursor, head
        events = read(
            conn, cursor, upto, processor.where, payload=getattr(processor, "payload", True)
        )
        if events:
            processor.apply(conn, events)
        set_offset(conn, processor.name, upto)
    return upto, head


class SharedWindow:
    """Reads a window of the log once for every processor stepping through it in lockstep.

    Turning rows into events costs more than the SQL, and a bulk catch-up had each processor
    read the same positions again. The full rows are read once per ``(after, upto)``; a
    processor's ``where`` is applied by asking the database for the matching positions only.
    Processors get the same event objects and must not modify them (none does).
    """

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._events: list[StoredEvent] = []

    def read(
        self, conn: Connection, after: int, upto: int, where: str | None, **_: Any
    ) -> list[StoredEvent]:
        """Events with ``after < seq <= upto`` matching ``where``, in log order."""
        if self._key != (after, upto):
            self._key, self._events = None, []  # release the old window before reading
            self._events = log.read_range(conn, after, upto)
            self._key = (after, upto)
        if where is None:
            return list(self._events)
        wanted = {
            int(seq)
            for (seq,) in conn.execute(
                f"SELECT seq FROM events WHERE seq > ? AND seq <= ? AND ({where})", (after, upto)
            ).fetchall()
        }
        return [ev for ev in self._events if ev.seq in wanted]


def run_until_caught_up(
    conn: Connection, processors: Sequence[Processor], window: int = 2000
) -> None:
    """Run every processor until all reach the log head (CLI commands, tests).

    Processors move in lockstep, one window each per round, so each window is read from the
    log once for all of them (``SharedWindow``). Each step still commits on its own: a bulk
    catch-up never holds the write lock (or, on PostgreSQL, the append lock consent's companions
    take) longer than one processor's window. Rounds repeat until no processor is behind,
    including the events a processor appended (consent's companions).
    """
    read = SharedWindow().read if len(processors) > 1 else log.read_range
    while True:
        cursors = [step(conn, p, window, read=read)[0] for p in processors]
        if all(cursor >= log.head(conn) for cursor in cursors):
            return


def reset(conn: Connection, processor: Processor) -> None:
    """Forget a processor's state and cursor; the next run rebuilds it from the whole log."""
    with conn.transaction():
        if conn.dialect == "postgresql":  # wait for a worker applying a window right now
            conn.execute(
                "SELECT pg_advisory_xact_lock(?, hashtext(?))",
                (PROCESSOR_LOCK_CLASS, processor.name),
            )
        processor.reset(conn)
        set_offset(conn, processor.name, 0)
