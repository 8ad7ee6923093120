"""Deliver claimed messages: consent and rendering on a DB thread, provider calls on a loop."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from engagehub.errors import ConfigError
from engagehub.messaging import sender
from engagehub.messaging.providers import Outgoing, for_channel
from engagehub.messaging.sender import Job
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.timeutil import now_ms


async def deliver(db: Database, settings: Settings, jobs: list[Job]) -> None:
    """Send claimed jobs and record every outcome (sent, dropped, failed, retry later)."""
    if not jobs:
        return

    def setup() -> sender.Prepared:
        with db.reader() as conn:
            prep = sender.prepare_batch(conn, settings, jobs)
            sender.check_consent(conn, jobs, prep)
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
        try:
            provider = for_channel(channel, settings)
        except ConfigError as exc:
            for job, _ in items:
                job.outcome, job.error, job.retry = "failed", exc.message, True
            continue
        providers[channel] = provider.name
        await provider.open()
        try:
            await sender.hand_over(
                provider,
                items,
                lambda done: _handed(db, done, settings.send_lease_seconds),
                settings.smtp_connections,
            )
        finally:
            await provider.close()

    def finish() -> None:
        groups: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            groups[providers.get(job.channel, "")].append(job)
        with db.reader() as conn:
            for name, part in groups.items():
                sender.record(conn, part, name or "none", settings.send_max_attempts)

    await asyncio.to_thread(finish)


def _handed(db: Database, jobs: list[Job], lease_seconds: float) -> None:
    """The commit before the irreversible step: these are never sent again."""
    with db.reader() as conn, conn.transaction():
        sender.mark(conn, jobs, "handed", lease=now_ms() + int(lease_seconds * 1000))


def run_batch(
    db: Database, settings: Settings, limit: int, broadcast: str | None = None
) -> list[Job]:
    """Claim up to ``limit`` due messages and deliver them (from a worker thread or the CLI)."""
    with db.reader() as conn:
        jobs = sender.claim(
            conn, limit, broadcast=broadcast, lease_ms=int(settings.send_lease_seconds * 1000)
        )
    if jobs:
        asyncio.run(deliver(db, settings, jobs))
    return jobs


async def send_now(db: Database, settings: Settings, message_id: str) -> Job | None:
    """Deliver one queued message right away (API sends, test sends); None if not due."""

    def take() -> list[Job]:
        with db.reader() as conn:
            return sender.claim(
                conn, 1, ids=[message_id], lease_ms=int(settings.send_lease_seconds * 1000)
            )

    jobs = await asyncio.to_thread(take)
    if not jobs:
        return None
    await deliver(db, settings, jobs)
    return jobs[0]
