"""Processors in a second process while a bulk import appends, so parsing and deriving use
both cores (SQLite's WAL lets one process read and write while the other appends)."""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from types import TracebackType

# Positions per round in the follower: an import's records are ~2,000 rows each, so a round
# stays a fraction of a second and the importing process never waits long for the write lock.
WINDOW = 4


def _follow(stop: Event, peak: Synchronized[int], window: int) -> None:
    """Catch up, wait a little, repeat; after ``stop``, one last catch-up, then exit."""
    from engagehub import registry
    from engagehub.processing import run_until_caught_up
    from engagehub.settings import get_settings
    from engagehub.storage import open_database

    current = get_settings()
    db = open_database(current.database_url, current)
    processors = registry.processors(current)
    try:
        with db.session() as conn:
            while True:
                last = stop.is_set()
                run_until_caught_up(conn, processors, window)
                if last:
                    break
                stop.wait(0.05)
    finally:
        db.close()
        peak.value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class Follower:
    """``with Follower() as f: ...append...; f.finish()`` — processors run alongside."""

    def __init__(self, window: int = WINDOW) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited threads or connections
        self._stop = context.Event()
        self.peak_mb = context.Value("q", 0)
        self._process = context.Process(
            target=_follow, args=(self._stop, self.peak_mb, window), daemon=True
        )

    def __enter__(self) -> Follower:
        self._process.start()
        return self

    def finish(self) -> bool:
        """Let the follower catch up with everything appended; True when it succeeded."""
        self._stop.set()
        self._process.join()
        return self._process.exitcode == 0

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process.is_alive():
            self._process.terminate()
            with contextlib.suppress(Exception):
                self._process.join(5)
