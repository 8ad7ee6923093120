"""Deliver claimed messages: consent and rendering on a DB thread, provider calls on a loop."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from engagehub.errors import ConfigError
from engagehub.messaging import outcomes, pacing, sender
from engagehub.messaging.providers import for_channel
from engagehub.messaging.providers.base import Outgoing, Provider
from engagehub.messaging.sender import Job
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.timeutil import now_ms


async def deliver(
    db: Database,
    settings: Settings,
    jobs: list[Job],
    pool: dict[str, Provider] | None = None,
    blocking: bool = False,
) -> None:
    """Send claimed jobs and record every outcome (sent, dropped, failed, retry later).

    With ``pool``, providers (and their connections) stay open for the next batch."""
    if not jobs:
        return

    def setup() -> sender.Prepared:
        with db.writer() as conn:
            prep = sender.prepare_batch(conn, settings, jobs)
            sender.check_suppression(conn, jobs)
            sender.check_consent(conn, jobs, prep)
            pacing.check_pacing(conn, settings, jobs, prep, now_ms())
            return prep

    prep = await asyncio.to_thread(setup)
    by_channel: dict[str, list[tuple[Job, Outgoing]]] = defaultdict(list)
    for job in jobs:
        if job.outcome:
            continue
        msg = sender.compose(job, prep)
        if msg is not None:
            by_channel[job.channel].append((job, msg))
    providers: dict[str, str] = {}
    for channel, items in by_channel.items():
        provider = pool.get(channel) if pool is not None else None
        if provider is None:
            try:
                provider = for_channel(channel, settings)
            except ConfigError as exc:
                for job, _ in items:
                    job.outcome, job.error, job.retry = "failed", exc.message, True
                continue
            await provider.open()
            if pool is not None:
                pool[channel] = provider
        providers[channel] = provider.name
        try:
            await sender.hand_over(
                provider,
                items,
                lambda done: _handed(db, done, settings.send_lease_seconds),
                settings.smtp_connections,
                blocking,
            )
        finally:
            if pool is None:
                await provider.close()

    def finish() -> None:
        groups: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            groups[providers.get(job.channel, "")].append(job)
        with db.writer() as conn:
            for name, part in groups.items():
                outcomes.record(conn, part, name or "none", settings.send_max_attempts)

    await asyncio.to_thread(finish)


def _handed(db: Database, jobs: list[Job], lease_seconds: float) -> set[str]:
    """The commit before the irreversible step: these are never sent again. Only rows this
    claim still owns are marked (and returned)."""
    now = now_ms()
    kept = set()
    with db.writer() as conn, conn.transaction():
        for job in jobs:
            changed = conn.execute(
                "UPDATE message_sends SET state = 'handed', lease_until = ?, updated_at = ? "
                "WHERE id = ? AND state = 'sending' AND attempts = ?",
                (now + int(lease_seconds * 1000), now, job.id, job.claim),
            ).rowcount
            if changed:
                kept.add(job.id)
    return kept


class Sender:
    """Claims and delivers batches from synchronous code (service threads, the CLI), keeping one
    event loop and open provider connections while busy; ``close`` releases them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: dict[str, Provider] = {}

    def run_batch(self, db: Database, limit: int, broadcast: str | None = None) -> list[Job]:
        """Claim up to ``limit`` due messages (of one broadcast, or of none) and deliver them."""
        lease = int(self.settings.send_lease_seconds * 1000)
        with db.writer() as conn:
            jobs = sender.claim(conn, limit, broadcast=broadcast, lease_ms=lease)
        if jobs:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(
                deliver(db, self.settings, jobs, self._pool, blocking=True)
            )
        return jobs

    def close(self) -> None:
        """Close provider connections and the loop (when idle)."""
        if self._loop is None:
            return
        for provider in self._pool.values():
            self._loop.run_until_complete(provider.close())
        self._pool.clear()
        self._loop.close()
        self._loop = None


def run_batch(
    db: Database, settings: Settings, limit: int, broadcast: str | None = None
) -> list[Job]:
    """One batch with a fresh loop and connections (tests, one-off calls)."""
    once = Sender(settings)
    try:
        return once.run_batch(db, limit, broadcast)
    finally:
        once.close()


async def send_now(db: Database, settings: Settings, message_id: str) -> Job | None:
    """Deliver one queued message right away (API sends, test sends); None if not due."""

    def take() -> list[Job]:
        with db.writer() as conn:
            return sender.claim(
                conn, 1, ids=[message_id], lease_ms=int(settings.send_lease_seconds * 1000)
            )

    jobs = await asyncio.to_thread(take)
    if not jobs:
        return None
    await deliver(db, settings, jobs)
    return jobs[0]
