"""Runs processors inside ``serve``, off the ingest thread: in a child process or a thread.

Derivation never runs on the writer's thread any more. In ``process`` mode (the default of
``engagehub serve``) a child process follows the log with its own connection, so ingest and
derivation use both cores (SQLite in WAL allows readers and one writer; writers take turns via
the write lock, and each round is one short transaction). ``thread`` mode runs the same loop on
a thread of the server (tests, and processors that are not in the registry). Either way the
server learns each round's cursors, so ``Hub.caught_up`` answers without polling the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection as Pipe
from typing import Any

from engagehub.processing import Processor
from engagehub.processing.health import Follower
from engagehub.settings import Settings
from engagehub.storage import Database

logger = logging.getLogger(__name__)
_IDLE_POLL_S = 1.0
_YIELD_S = 0.0003
_RESTART_S = 1.0
_ROUND_S = 0.1  # a round holds the SQLite write lock about this long; ingest commits between
_YIELD_MAX_S = 0.05  # longest a round waits for queued appends to commit first
_POLL_S = 0.0005
_BUSY_MIN = 1_000  # smallest window while ingest is busy (fixed costs per round)
_BEHIND = 5_000  # positions behind the head from which rounds catch up with longer windows
_BEHIND_ROUND_S = 0.3  # a catching-up round's write lock (ingest still commits between rounds)
_BEHIND_MIN = 2_500  # smallest window while catching up
_BUSY_RECENT_S = 1.0  # ingest counts as busy this long after appends last waited

Progress = dict[str, Any]
"""``{"cursors": {name: seq}, "head": int, "errors": {name: text}, "cpu": {name: seconds}}``."""
# Builds the processors from settings (registry.processors): the child process calls it.
Factory = Callable[[Settings], list[Processor]]


def follow(
    db: Database,
    processors: Sequence[Processor],
    window: int,
    wait: Callable[[float], bool],
    publish: Callable[[Progress], None],
    stopping: Callable[[], bool],
    shards: int = 1,
    ingest_busy: Any = None,
) -> None:
    """Rounds until caught up, publish, sleep until woken; reconnect after database errors.

    ``ingest_busy`` (``storage.writer.IngestSignal``) tells whether the writer waits for the
    write lock: acknowledging events comes first, so before a round the processors let it take
    the lock (waiting at most ``_YIELD_MAX_S``); while ingest commits, rounds stay short.
    """
    from engagehub.processing.shards import reshard_all, units

    follower = Follower(units(processors, shards), window)
    conn = None
    resharded = False
    busy_at = 0.0
    commits = 0
    while not stopping():
        if ingest_busy is not None:
            if ingest_busy.commits != commits:  # ingest is appending: keep rounds short
                commits, busy_at = ingest_busy.commits, time.monotonic()
            if ingest_busy.waiting:  # it waits for the lock the last round held: its turn
                let_one_commit(ingest_busy, time.monotonic() + _YIELD_MAX_S)
        # Short rounds (short write locks) only while ingest is busy; full windows otherwise.
        if time.monotonic() - busy_at < _BUSY_RECENT_S:
            round_s, floor = busy_pace(follower.lag(), window)
            if follower.round_s != round_s:
                follower.round_s, follower.size, follower.min_size = round_s, floor, floor
        else:
            follower.round_s, follower.size = None, window
        try:
            if conn is None:
                conn = db.connect()
            if not resharded:  # the shard cursors the units follow (as a worker makes them)
                reshard_all(conn, processors, shards, window)
                resharded = True
            more = follower.round(conn, wait=False)
        except Exception as exc:  # the database went away: retry from the durable cursors
            logger.warning("processor round failed: %s", exc)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            publish({"cursors": {}, "head": 0, "errors": {"round": f"{type(exc).__name__}: {exc}"}})
            wait(_RESTART_S)
            continue
        cursors: dict[str, int] = {}
        for name, seq in follower.cursors.items():  # a sharded processor: its slowest shard
            base = name.split("#", 1)[0]
            cursors[base] = min(cursors.get(base, seq), seq)
        cpu: dict[str, float] = {}
        for name, seconds in follower.cpu.items():  # a sharded processor: all its shards
            base = name.split("#", 1)[0]
            cpu[base] = cpu.get(base, 0.0) + seconds
        publish({"cursors": cursors, "head": follower.head, "errors": follower.errors, "cpu": cpu})
        if more:
            time.sleep(_YIELD_S)  # let a waiting ingest commit take the write lock
            continue
        retry = min((s.retry_at for s in follower.sick.values()), default=None)
        wait(
            _IDLE_POLL_S
            if retry is None
            else max(0.01, min(_IDLE_POLL_S, retry - time.monotonic()))
        )
    if conn is not None:
        conn.close()


def busy_pace(lag: int, window: int) -> tuple[float, int]:
    """A round's target duration and smallest window while ingest is busy, ``lag`` positions
    behind the log head.

    Close behind, rounds stay short (0.1 s of write lock) so acknowledgements come first. Far
    behind, a round of 1,000 positions costs ~1.5x one of 2,500 per event (every round commits
    ~1 random B-tree page per event, and a bigger window shares more of them), and the
    processors are what end to end waits for: rounds grow to 0.3 s while the lag lasts.
    """
    if lag > _BEHIND:
        return _BEHIND_ROUND_S, min(window, _BEHIND_MIN)
    return _ROUND_S, min(window, _BUSY_MIN)


def let_one_commit(ingest: Any, deadline: float) -> None:
    """Wait until the writer, which waits for the write lock, has it (its group commit takes
    every append queued by then), or ``deadline`` (real time); the next round waits for it."""
    seen = ingest.commits
    while ingest.waiting and ingest.commits == seen and time.monotonic() < deadline:
        time.sleep(_POLL_S)


class ProcessorRunner:
    """The server's view of its processors: start/stop, wake on commits, cursors, errors."""

    def __init__(
        self,
        db: Database,
        processors: Sequence[Processor],
        settings: Settings,
        ingest_busy: Any = None,
        factory: Factory | None = None,
    ) -> None:
        self.db = db
        self.ingest_busy = ingest_busy
        self.processors = list(processors)
        self.settings = settings
        self.factory = factory
        rebuildable = factory is not None and _rebuildable(processors, factory(settings))
        self.mode = settings.processor_mode if rebuildable else "thread"
        self.offsets: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.cpu: dict[str, float] = {}
        """CPU seconds per processor (and ``rounds.ROUND_CPU``) of the processor loop, summed
        over every processor process this runner started (``/metrics``)."""
        self._cpu_before: dict[str, float] = {}  # what processes before the current one spent
        self._cpu_now: dict[str, float] = {}
        self._progress: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: Any = None
        self._pipe: Pipe | None = None

    async def start(self) -> None:
        """Start following the log (cursors are read by the first round)."""
        self._loop = asyncio.get_running_loop()
        self._progress = asyncio.Event()
        if not self.processors:
            return
        target = self._supervise if self.mode == "process" else self._run_thread
        self._thread = threading.Thread(target=target, name="engagehub-processors", daemon=True)
        self._thread.start()

    def notify(self, head: int = 0) -> None:
        """Something was appended: run a round now."""
        self._wake.set()
        pipe = self._pipe
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.send_bytes(b"w")

    def _publish(self, progress: Progress) -> None:
        """From the processor thread: hand a round's cursors to the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._update, progress)

    def _update(self, progress: Progress) -> None:
        self.offsets.update(progress["cursors"])
        self.errors = dict(progress["errors"])
        if progress.get("restarted"):  # a new processor process counts from zero again
            for name, seconds in self._cpu_now.items():
                self._cpu_before[name] = self._cpu_before.get(name, 0.0) + seconds
            self._cpu_now = {}
        self._cpu_now.update(progress.get("cpu", {}))
        self.cpu = {
            n: self._cpu_before.get(n, 0.0) + self._cpu_now.get(n, 0.0)
            for n in self._cpu_before.keys() | self._cpu_now.keys()
        }
        if self._progress is not None:
            tick, self._progress = self._progress, asyncio.Event()
            tick.set()  # wakes every waiter of this round

    def _wait(self, seconds: float) -> bool:
        woken = self._wake.wait(seconds)
        self._wake.clear()
        return woken

    def _run_thread(self) -> None:
        follow(
            self.db,
            self.processors,
            self.settings.processor_batch,
            self._wait,
            self._publish,
            self._stop.is_set,
            self.settings.processor_shards,
            self.ingest_busy,
        )

    def _supervise(self) -> None:
        """Thread: run the child process, relay its progress, restart it if it dies."""
        ctx = multiprocessing.get_context("spawn")
        names = [p.name for p in self.processors]
        while not self._stop.is_set():
            parent, child_end = ctx.Pipe()
            child = ctx.Process(
                target=child_main,
                args=(self.settings, names, child_end, self.ingest_busy, self.factory),
                name="engagehub-processors",
                daemon=True,
            )
            child.start()
            child_end.close()
            self._child, self._pipe = child, parent
            try:
                while not self._stop.is_set():
                    if parent.poll(0.5):
                        self._publish(parent.recv())
                    elif not child.is_alive():
                        break
            except (EOFError, OSError):
                pass
            self._pipe = None
            with contextlib.suppress(OSError):
                parent.close()
            self._publish({"cursors": {}, "errors": self.errors, "restarted": True})
            if not self._stop.is_set():
                logger.error("processor process exited (%s); restarting", child.exitcode)
                self._stop.wait(_RESTART_S)
            child.join(0.1)

    async def wait_for(
        self, seq: int, names: Sequence[str] | None = None, timeout: float = 30
    ) -> None:
        """Return once the named processors (all by default) have applied ``seq``."""
        wanted = list(names) if names is not None else [p.name for p in self.processors]

        def done() -> bool:
            return all(self.offsets.get(n, 0) >= seq for n in wanted)

        self.notify()
        async with asyncio.timeout(timeout):
            while not done():
                assert self._progress is not None, "runner not started"
                await self._progress.wait()

    async def stop(self) -> None:
        """Stop following the log (cursors are durable; a round in flight rolls back)."""
        self._stop.set()
        self._wake.set()
        child = self._child
        if self._pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                self._pipe.send_bytes(b"q")
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        if child is not None:
            await asyncio.to_thread(child.join, 10)
            if child.is_alive():
                child.terminate()


def processor_children(pid: int) -> list[int]:
    """Process ids of the processor processes of server ``pid`` (benchmarks, tests)."""
    import psutil

    found = []
    for child in psutil.Process(pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def _rebuildable(processors: Sequence[Processor], built: Sequence[Processor]) -> bool:
    """Whether a child process calling the factory gets exactly these processors (a prefix of
    what it builds, all of them engagehub's own)."""
    known = [p.name for p in built]
    return [p.name for p in processors] == known[: len(processors)] and all(
        type(p).__module__.startswith("engagehub.") for p in processors
    )


def child_main(
    settings: Settings,
    names: list[str],
    pipe: Pipe,
    ingest_busy: Any = None,
    factory: Factory | None = None,
) -> None:
    """The processor process: follow the log, report each round, stop when the server does.

    ``factory`` (a module-level function, so it pickles by name) rebuilds the processors here.
    """
    from engagehub.runtime import tune_runtime
    from engagehub.storage import open_database

    assert factory is not None, "process mode needs a processor factory"
    tune_runtime()
    db = open_database(settings.database_url, settings)
    processors = [p for p in factory(settings) if p.name in names]
    stop = threading.Event()
    wake = threading.Event()

    def listen() -> None:
        try:
            while True:
                msg = pipe.recv_bytes()
                if msg == b"q":
                    break
                wake.set()
        except (EOFError, OSError):
            pass  # the server is gone
        stop.set()
        wake.set()

    threading.Thread(target=listen, daemon=True).start()

    def wait(seconds: float) -> bool:
        woken = wake.wait(seconds)
        wake.clear()
        return woken

    def publish(progress: Progress) -> None:
        with contextlib.suppress(OSError, ValueError):
            pipe.send(progress)

    try:
        follow(
            db,
            processors,
            settings.processor_batch,
            wait,
            publish,
            stop.is_set,
            settings.processor_shards,
            ingest_busy,
        )
    finally:
        db.close()
