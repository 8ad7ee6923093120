"""Runs processors inside ``serve`` after commits, on the writer thread, yielding to ingest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from functools import partial

from engagehub.ingest.writer import LogWriter
from engagehub.processing import Processor, get_offset, step

logger = logging.getLogger(__name__)
_YIELD_S = 0.25
_STALLED_S = 0.05


class ProcessorRunner:
    """Wakes on every commit and steps each processor until it reaches the log head."""

    def __init__(self, writer: LogWriter, processors: Sequence[Processor], window: int) -> None:
        self._writer = writer
        self.processors = list(processors)
        self._window = window
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self.offsets: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the cursors and start following the log."""
        for p in self.processors:
            self.offsets[p.name] = await self._writer.submit(partial(get_offset, name=p.name))
        self._task = asyncio.create_task(self._run(), name="engagehub-processors")
        self._wakeup.set()

    def notify(self, head: int) -> None:
        """Called after each commit."""
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            behind = stalled = False
            for processor in self.processors:
                if self._writer.busy:
                    # Acknowledging events comes first; processors catch up between bursts.
                    await self._writer.idle(_YIELD_S)
                try:
                    cursor, head = await self._writer.submit(
                        partial(step, processor=processor, window=self._window, wait=False)
                    )
                except Exception as exc:
                    # A failing processor must not stop ingest or the others; it retries on
                    # the next commit or after a pause, from its durable cursor.
                    logger.exception("processor %s failed", processor.name)
                    self.errors[processor.name] = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(1.0)
                    behind = True
                    continue
                self.errors.pop(processor.name, None)
                if cursor == self.offsets.get(processor.name) and cursor < head:
                    # Another process holds this cursor (PostgreSQL scale-out): poll, don't spin.
                    stalled = True
                self.offsets[processor.name] = cursor
                behind = behind or cursor < head
            async with self._progress:
                self._progress.notify_all()
            if behind:
                self._wakeup.set()
                await asyncio.sleep(_STALLED_S if stalled else 0)

    async def wait_for(
        self, seq: int, names: Sequence[str] | None = None, timeout: float = 30
    ) -> None:
        """Return once the named processors (all by default) have applied ``seq``."""
        wanted = list(names) if names is not None else [p.name for p in self.processors]

        def done() -> bool:
            return all(self.offsets.get(n, 0) >= seq for n in wanted)

        self._wakeup.set()
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(done)

    async def stop(self) -> None:
        """Stop following the log (cursors are durable; nothing is lost)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
