"""The running server's shared state: settings, database, writer, processors, source cache."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from engagehub.classify import timing
from engagehub.errors import AuthError, ForbiddenError, NotFound, TransientError
from engagehub.lru import LRU
from engagehub.model import AppendResult, IncomingEvent
from engagehub.ops import metrics
from engagehub.processing import Processor
from engagehub.processing.runner import Factory, ProcessorRunner
from engagehub.processing.services import Service, ServiceRunner
from engagehub.runtime import tune_runtime
from engagehub.settings import Settings
from engagehub.storage import Database, migrate
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.storage.writer import IngestSignal, LogWriter
from engagehub.timeutil import now_ms

T = TypeVar("T")
logger = logging.getLogger(__name__)
_SOURCE_TTL = 30.0
_MISS_TTL = 2.0
MAX_SOURCE_NAME = 200  # longer names are never looked up (the API allows 100 characters)


def warn_host_header_trust(conn: Connection, settings: Settings) -> None:
    """Twilio signs the URL it called; without a public base URL we rebuild it from ``Host``."""
    if settings.public_base_url:
        return
    kinds = {s.kind for s in source_store.list_all(conn)}
    if "twilio" in kinds:
        logger.warning(
            "ENGAGEHUB_PUBLIC_BASE_URL is unset: Twilio signatures are checked against the URL "
            "built from the request's Host header; set it to the public URL Twilio calls "
            "(required behind a proxy, and so a forged Host cannot matter)"
        )


class Hub:
    """One per process; routes take it as ``hub: HubDep`` (``engagehub.api.deps``)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        processors: Sequence[Processor] = (),
        services: Sequence[Service] = (),
        processor_factory: Factory | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.writer = LogWriter(db)
        self.writer.before_append = timing.writer_hook(settings)  # click timing rules (#20)
        # Set while appends wait for the writer; the processors (any process) let them go first.
        self.writer.signal = IngestSignal()
        self.runner = ProcessorRunner(
            db, processors, settings, self.writer.signal, factory=processor_factory
        )
        self._unlisten: Callable[[], None] | None = None
        self.services = ServiceRunner(db, services)
        self.admin_token_hash = ""
        self._sources: LRU[str, tuple[float, source_store.Source | None]] = LRU(
            settings.source_cache_size
        )
        self._kinds: dict[int, str] = {}
        self.started = False

    async def start(self) -> None:
        """Migrate, make sure an admin token exists, start the writer and processors."""
        from engagehub.access.admin_token import ensure_admin_token

        def prepare() -> tuple[str, str | None]:
            with self.db.session() as conn:
                migrate(conn)
                warn_host_header_trust(conn, self.settings)
                return ensure_admin_token(conn, self.settings)

        self.admin_token_hash, generated = await run_in_threadpool(prepare)
        if generated:
            from engagehub.ops.logs import announce

            announce(self.settings, "generated admin token (shown once, store it)", token=generated)
        tune_runtime()
        await self.writer.start()
        if self.settings.run_processors:
            # Every commit that appends (writer, services, CLI helpers in this process) wakes them.
            self._unlisten = log.on_append(self.runner.notify)
            await self.runner.start()
        if self.settings.run_services:
            await self.services.start()
        self.started = True

    async def stop(self) -> None:
        """Flush the writer and stop processors; acknowledged events are already durable."""
        await self.services.stop()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        await self.runner.stop()
        await self.writer.stop()
        self.db.close()
        self.started = False

    async def append(
        self,
        source_id: int,
        events: Sequence[IncomingEvent],
        received_at: int | None = None,
        screened: bool = False,
    ) -> AppendResult:
        """Durably append events (group commit); returns after the commit. ``screened``: they
        passed ``storage.sanity.screen`` already (the writer checks every other append)."""
        batch = log.Batch(source_id, received_at or now_ms(), events, screened)
        result = await self.writer.append(batch)
        metrics.record_append(
            self._kinds.get(source_id, "internal"), result.inserted, result.duplicates
        )
        return result

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with a pooled reader connection on a worker thread."""

        def call() -> T:
            with self.db.reader() as conn:
                return fn(conn)

        return await run_in_threadpool(call)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with the process's write connection, on the writer thread (reader
        connections are read-only); appends inside it wake the processors by themselves."""
        return await self.writer.submit(fn)

    async def caught_up(self, seq: int, names: Sequence[str] | None = None) -> None:
        """Wait until processors applied ``seq`` (read-your-writes for APIs that need it)."""
        if self.settings.run_processors:
            await self.runner.wait_for(seq, names)
        else:
            await self._poll_cursors(seq, names)

    async def _poll_cursors(
        self, seq: int, names: Sequence[str] | None, timeout: float = 30
    ) -> None:
        """Processors run in ``engagehub worker`` processes: wait on their durable cursors."""
        wanted = list(names) if names is not None else [p.name for p in self.runner.processors]
        if not wanted:
            return

        def behind(conn: Connection) -> int:
            from engagehub.processing.shards import processor_positions

            positions = processor_positions(conn)
            return sum(1 for n in wanted if positions.get(n, 0) < seq)

        deadline = time.monotonic() + timeout
        while await self.read(behind):
            if time.monotonic() > deadline:
                raise TransientError(
                    "processors did not apply this change in time; is `engagehub worker` "
                    "running? (ENGAGEHUB_RUN_PROCESSORS=false leaves processors to workers)",
                    seq=seq,
                    processors=", ".join(wanted),
                    timeout_s=timeout,
                )
            await asyncio.sleep(0.02)

    async def source_for_key(
        self, write_key: str | None, kinds: Sequence[str]
    ) -> source_store.Source:
        """The enabled source owning this write key, of one of ``kinds``; 401/403 otherwise."""
        if not write_key:
            raise AuthError("missing write key", hint="send it as HTTP Basic user name or writeKey")
        source = await self.find_write_key(write_key)
        if source is None:
            raise AuthError("unknown write key", write_key_hint=write_key[:4] + "…")
        return self._check(source, kinds)

    async def find_write_key(self, write_key: str) -> source_store.Source | None:
        """The source owning ``write_key`` or None (cached; the rate limiter asks this too)."""
        if len(write_key) > 1000:
            return None
        cache_key = "k:" + source_store.hash_key(write_key)
        return await self._cached(cache_key, lambda c: source_store.by_write_key(c, write_key))

    async def source_named(self, name: str, kinds: Sequence[str]) -> source_store.Source:
        """The enabled source called ``name`` of one of ``kinds`` (webhook routes)."""

        def find(conn: Connection) -> source_store.Source | None:
            try:
                return source_store.by_name(conn, name)
            except NotFound:
                return None

        source = await self._cached("n:" + name, find) if len(name) <= MAX_SOURCE_NAME else None
        if source is None:
            raise NotFound(f"no source named {name!r}", source=name)
        return self._check(source, kinds)

    async def _cached(
        self, key: str, load: Callable[[Connection], source_store.Source | None]
    ) -> source_store.Source | None:
        hit = self._sources.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        source = await self.read(load)
        ttl = _SOURCE_TTL if source is not None else _MISS_TTL
        self._sources.put(key, (now + ttl, source))
        return source

    def forget_sources(self) -> None:
        """Drop cached sources (after one is added or changed)."""
        self._sources.clear()

    def _check(self, source: source_store.Source, kinds: Sequence[str]) -> source_store.Source:
        self._kinds[source.id] = source.kind
        if source.disabled:
            raise ForbiddenError(f"source {source.name!r} is disabled", source=source.name)
        if source.kind not in kinds:
            raise ForbiddenError(
                f"source {source.name!r} is of kind {source.kind!r}; this endpoint takes "
                f"{', '.join(kinds)}",
                source=source.name,
                kind=source.kind,
            )
        return source
