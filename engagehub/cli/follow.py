"""Processors in other processes while a bulk import appends, so parsing and deriving use
both cores (SQLite's WAL lets one process read and write while the others append).

One follower by default, running every processor in registry order: consent reads profiles
(person-level vendor consent, ``consent.persons``), so the two must stay in one round. Groups
of processors with no such dependency could each have a follower of their own."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import resource
from multiprocessing.sharedctypes import Synchronized, SynchronizedString
from multiprocessing.synchronize import Event
from types import TracebackType

# Positions per round in the follower: an import's records are ~2,000 rows each. A round of
# many records writes each page of the states, history and profile B-trees once for all of
# them (random keys: per record, nearly every row dirtied a page of its own); the importer
# does not wait for it, its chunks are stored by a thread of their own (``batches.Appender``).
# 64 (128k rows), not 32: measured in session 6, when the profile-id index (gone since 0214)
# took random inserts and fewer rounds wrote its pages fewer times (docs/architecture.md).
WINDOW = 64

CACHE_KB = 8_192
"""SQLite page cache of the importer's own connection (it only reads: the refusal check)."""
FOLLOWER_CACHE_KB = 65_536
"""SQLite page cache per follower: a round's dirty pages stay in memory until its commit.
128 MB was measured at 1M rows in session 6 (same-run pair): the same processor CPU per row,
75 MB more RSS (see docs/architecture.md)."""

GROUPS: tuple[tuple[str, ...], ...] = ((),)
"""Processor names per follower; an empty group takes every processor no other group names."""


def _follow(
    stop: Event,
    peak: Synchronized[int],
    cpu: Synchronized[float],
    named: SynchronizedString,
    window: int,
    group: tuple[str, ...],
    taken: set[str],
) -> None:
    """Catch up, wait a little, repeat; after ``stop``, one last catch-up, then exit."""
    from engagehub import registry
    from engagehub.processing.health import Follower as Rounds
    from engagehub.processing.shards import layout
    from engagehub.runtime import tune_runtime
    from engagehub.settings import get_settings
    from engagehub.storage import open_database

    tune_runtime()  # a bulk catch-up allocates millions of short-lived objects: a rarer GC
    current = get_settings()
    db = open_database(current.database_url, current)
    processors = [
        p
        for p in registry.processors(current)
        if (p.name in group if group else p.name not in taken)
    ]
    rounds: Rounds | None = None
    try:
        with db.session() as conn:
            if conn.dialect == "sqlite":  # three processes share the machine: a smaller cache
                conn.execute(f"PRAGMA cache_size=-{FOLLOWER_CACHE_KB}")
                # A round's savepoints keep the original of every page they change; in memory
                # that grew with the window (430 MB at 32 records), in a temp file it does not.
                conn.execute("PRAGMA temp_store=FILE")
            rounds = Rounds(layout(conn, processors), window)  # one, so its CPU sums add up
            while True:
                last = stop.is_set()
                rounds.catch_up(conn)
                if last:
                    break
                stop.wait(0.05)
    finally:
        db.close()
        peak.value = peak_rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu.value = usage.ru_utime + usage.ru_stime
        if rounds is not None:
            named.value = json.dumps({k: round(v, 2) for k, v in rounds.cpu.items()}).encode()


def peak_rss_mb() -> int:
    """This process's own peak RSS: ``VmHWM`` (``ru_maxrss`` keeps the parent's across exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class Follower:
    """``with Follower() as f: ...append...; f.finish()`` — processors run alongside."""

    def __init__(self, window: int = WINDOW, groups: tuple[tuple[str, ...], ...] = GROUPS) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited threads or connections
        self._stop = context.Event()
        taken = {name for group in groups for name in group}
        self._peaks = [context.Value("q", 0) for _ in groups]
        self._cpu = [context.Value("d", 0.0) for _ in groups]
        self._named: list[SynchronizedString] = [
            context.Array("c", 4096)  # type: ignore[misc]  # typeshed: Array("c") is a string
            for _ in groups
        ]
        self._processes = [
            context.Process(
                target=_follow,
                args=(self._stop, peak, cpu, named, window, group, taken),
                daemon=True,
            )
            for peak, cpu, named, group in zip(
                self._peaks, self._cpu, self._named, groups, strict=True
            )
        ]

    @property
    def peaks_mb(self) -> list[int]:
        """Peak RSS of each follower process, once finished."""
        return [int(p.value) for p in self._peaks]

    @property
    def cpu_s(self) -> list[float]:
        """CPU seconds (user + system) of each follower process, once finished."""
        return [float(c.value) for c in self._cpu]

    @property
    def cpu_by_name(self) -> dict[str, float]:
        """CPU seconds per processor (and ``(round)``: commits, cursors), summed over followers."""
        out: dict[str, float] = {}
        for named in self._named:
            for name, seconds in json.loads(named.value or b"{}").items():
                out[name] = out.get(name, 0.0) + seconds
        return out

    def __enter__(self) -> Follower:
        for process in self._processes:
            process.start()
        return self

    def finish(self) -> bool:
        """Let the followers catch up with everything appended; True when all succeeded."""
        self._stop.set()
        for process in self._processes:
            process.join()
        return all(p.exitcode == 0 for p in self._processes)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
                with contextlib.suppress(Exception):
                    process.join(5)
