"""Drives rounds for a set of processors; a failing one is narrowed down, recorded and skipped.

A processor that raises keeps its cursor while the others go on. It is retried alone on half
the window each time until the window is one event: that position and the error are recorded in
``processor_failures`` (shown by ``engagehub processors status`` and on ``/metrics``), and it is
retried every few seconds (a transient cause heals by itself) until an operator quarantines the
event with ``engagehub processors skip NAME SEQ`` (recorded in ``processor_skips``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from engagehub.errors import ConflictError, EngagehubError, NotFound
from engagehub.processing.rounds import Processor, Round, Unit, get_offset, run_round, set_offset
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

logger = logging.getLogger(__name__)
RETRY_S = 5.0


class ProcessorFailed(EngagehubError):
    """A processor cannot apply an event of the log; the others went on without it."""

    code = "processor_failed"
    http_status = 500


@dataclass
class _Sick:
    limit: int
    error: str
    until: int
    """End of the first failing window: past it, the processor is healthy again."""
    retry_at: float = 0.0
    seq: int | None = None
    """The one position that fails, once narrowed down."""


class Follower:
    """Rounds over ``processors`` with failure isolation; keeps cursors and errors in memory."""

    def __init__(
        self,
        processors: Sequence[Processor | Unit],
        window: int,
        retry_s: float = RETRY_S,
        round_s: float | None = None,
    ):
        self.processors = list(processors)
        self.window = window
        self.retry_s = retry_s
        self.round_s = round_s
        """Target duration of a round (its write lock); the window adapts to it. None: fixed."""
        self.min_size = 200
        """Smallest adapted window: a round has a fixed cost (statements, commit), and on a
        loaded machine wall time overstates a round's work, which would shrink it further."""
        self.size = window if round_s is None else min(window, self.min_size)
        self.sick: dict[str, _Sick] = {}
        self.cursors: dict[str, int] = {}
        self.head = 0
        self.busy: set[str] = set()
        """Processors another process held in the last round (their lock was taken)."""
        self.cpu: dict[str, float] = {}
        """CPU seconds spent per processor (or shard) and in the rounds' own statements
        (``rounds.ROUND_CPU``), summed over this follower's rounds."""

    @property
    def errors(self) -> dict[str, str]:
        """Failing processors: name -> what failed, with its log position when known."""
        return {
            n: (f"at seq {s.seq}: {s.error}" if s.seq is not None else s.error)
            for n, s in self.sick.items()
        }

    def round(self, conn: Connection, wait: bool = True) -> bool:
        """One round for the healthy processors and a retry for each failing one that is due;
        returns whether there is more to do right away."""
        healthy = [p for p in self.processors if p.name not in self.sick]
        more = False
        if healthy:
            started = time.perf_counter()
            result = run_round(conn, healthy, self.size, wait)
            self._adapt(result, time.perf_counter() - started)
            more = self._take(conn, result)
        now = time.monotonic()
        for p in self.processors:
            sick = self.sick.get(p.name)
            if sick is None or sick.retry_at > now:
                continue
            result = run_round(conn, [p], self.window, wait, limits={p.name: sick.limit})
            if p.name not in result.failed and p.name not in result.busy:
                sick.limit = min(self.window, sick.limit * 2)  # past it: widen again
                if result.cursors.get(p.name, 0) >= (sick.seq or sick.until):
                    self._healed(conn, p.name)
            more = self._take(conn, result) or more
        return more

    def _adapt(self, result: Round, elapsed: float) -> None:
        """Keep rounds near ``round_s``: short write locks while ingest is busy, big windows
        (fewer commits) when each position is cheap."""
        if self.round_s is None or not result.applied:
            return
        if elapsed > self.round_s:
            floor = min(self.window, self.min_size)
            self.size = max(floor, int(self.size * self.round_s / elapsed))
        elif elapsed < self.round_s / 2:
            self.size = min(self.window, self.size * 2)

    def _take(self, conn: Connection, result: Round) -> bool:
        for name, seconds in result.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds
        self.head = max(self.head, result.head)
        self.cursors.update(result.cursors)
        self.busy = set(result.busy)
        for name, (cursor, upto, exc) in result.failed.items():
            self._failed(conn, name, cursor, upto, exc)
        behind = any(
            self.cursors.get(p.name, 0) < result.head
            for p in self.processors
            if p.name not in self.sick and p.name not in result.busy
        )
        narrowing = any(s.seq is None for s in self.sick.values())
        return behind or narrowing

    def _failed(
        self, conn: Connection, name: str, cursor: int, upto: int, exc: BaseException
    ) -> None:
        text = f"{type(exc).__name__}: {exc}"
        sick = self.sick.setdefault(name, _Sick(upto - cursor, text, upto))
        sick.error = text
        if upto - cursor > 1:
            sick.limit, sick.retry_at = max(1, (upto - cursor) // 2), 0.0
            return
        sick.limit, sick.seq = 1, upto
        sick.retry_at = time.monotonic() + self.retry_s
        logger.error("processor %s fails at seq %d: %s", name, upto, text, exc_info=exc)
        record_failure(conn, name, upto, text)

    def _healed(self, conn: Connection, name: str) -> None:
        self.sick.pop(name, None)
        with conn.transaction():
            conn.execute("DELETE FROM processor_failures WHERE name = ?", (name,))

    def lag(self) -> int:
        """Positions the slowest healthy processor is behind the log head (last round's)."""
        healthy = [self.cursors.get(p.name, 0) for p in self.processors if p.name not in self.sick]
        return max(0, self.head - min(healthy, default=self.head))

    def stuck(self) -> dict[str, _Sick]:
        """Processors narrowed down to one failing event."""
        return {n: s for n, s in self.sick.items() if s.seq is not None}

    def catch_up(self, conn: Connection) -> None:
        """Rounds until every healthy processor is at the head; then raise if one is stuck."""
        while True:
            for sick in self.sick.values():
                if sick.seq is None:
                    sick.retry_at = 0.0
            more = self.round(conn)
            if not more and len(self.stuck()) == len(self.sick):
                break
        stuck = self.stuck()
        if stuck:
            name, sick = sorted(stuck.items())[0]
            raise ProcessorFailed(
                f"processor {name!r} fails at log position {sick.seq}: {sick.error}; the other "
                f"processors went on (see `engagehub processors status`, and `engagehub "
                f"processors skip {name} {sick.seq}` to quarantine the event)",
                processor=name,
                seq=sick.seq,
                error=sick.error,
            )


def record_failure(conn: Connection, name: str, seq: int, error: str) -> None:
    """Remember where ``name`` is stuck (one row per processor; attempts counted)."""
    now = now_ms()
    with conn.transaction():
        conn.execute(
            "INSERT INTO processor_failures (name, seq, error, attempts, first_failed_at, "
            "last_failed_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "attempts = CASE WHEN processor_failures.seq = excluded.seq "
            "THEN processor_failures.attempts + 1 ELSE 1 END, "
            "first_failed_at = CASE WHEN processor_failures.seq = excluded.seq "
            "THEN processor_failures.first_failed_at ELSE excluded.first_failed_at END, "
            "seq = excluded.seq, error = excluded.error, last_failed_at = excluded.last_failed_at",
            (name, seq, error[:2000], now, now),
        )


def failures(conn: Connection) -> dict[str, dict[str, object]]:
    """Recorded failures by processor name."""
    return {
        str(r["name"]): r
        for r in conn.all(
            "SELECT name, seq, error, attempts, first_failed_at, last_failed_at "
            "FROM processor_failures ORDER BY name"
        )
    }


def skip(conn: Connection, name: str, seq: int, who: str = "cli") -> dict[str, object]:
    """Quarantine the event ``name`` is stuck on: its cursor moves past it, and it is recorded.

    Only the very next event of the cursor can be skipped (never a silent jump over others).
    """
    with conn.transaction():
        cursor = get_offset(conn, name, lock=True)
        if seq != cursor + 1:
            raise ConflictError(
                f"processor {name!r} is at log position {cursor}: only the event it would apply "
                f"next ({cursor + 1}) can be skipped, not {seq}",
                processor=name,
                cursor=cursor,
                seq=seq,
            )
        if conn.scalar("SELECT 1 FROM events WHERE seq = ?", (seq,)) is None:
            raise NotFound(f"no event at log position {seq}", seq=seq)
        error = conn.scalar("SELECT error FROM processor_failures WHERE name = ?", (name,))
        conn.execute(
            "INSERT INTO processor_skips (name, seq, error, skipped_by, skipped_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, seq) DO NOTHING",
            (name, seq, error, who, now_ms()),
        )
        conn.execute("DELETE FROM processor_failures WHERE name = ?", (name,))
        set_offset(conn, name, seq)
    return {"processor": name, "skipped": seq, "error": error}
