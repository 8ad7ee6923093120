"""Sending: queue a message as a ``message_sends`` row, claim due rows, render, hand them over.

A row is written (``pending``) before anything is sent and its id is the message id the
provider gets. Claiming marks rows ``sending`` with a lease in one transaction (``SKIP LOCKED``
on PostgreSQL), checks consent and drops the ones not subscribed ("Email/SMS Dropped" with
``drop_reason``). For SMTP the rows become ``handed`` in a commit placed just before the final
"." of DATA; a process killed earlier leaves them ``sending`` and the server discarded the
message, so they are retried after the lease; ``handed`` rows are never sent again. HTTP
providers are retried with the message id as idempotency key. Results, and their canonical
events in the log, are committed together.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from engagehub.consent import store as consent
from engagehub.consent.model import NO_STATUS, PENDING
from engagehub.errors import PayloadError, is_terminal
from engagehub.messaging import links, tracking
from engagehub.messaging.providers.base import Accepted, Outgoing, Provider, ProviderError
from engagehub.messaging.templates import Rendered, TemplateIn, load, render
from engagehub.privacy import suppress
from engagehub.settings import Settings
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks
from engagehub.suppression import store as suppression
from engagehub.timeutil import now_ms

OPEN_STATES = ("pending", "sending", "handed")
ERASED_ERROR = "erased: this contact point's person was erased"
"""A send to an erased person: dropped, and its row keeps neither contact nor context."""
COLUMNS = "id, template, channel, contact, broadcast_id, journey, transactional, context, attempts"


@dataclass(slots=True)
class Job:
    """A claimed row, ready to render and send."""

    id: str
    template: str
    channel: str
    contact: str
    broadcast_id: str | None
    journey: str | None
    transactional: bool
    context: dict[str, Any]
    attempts: int
    traits: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""
    error: str | None = None
    accepted: Accepted | None = None
    retry: bool = False
    error_code: str | None = None
    """The provider's error code of a failed send (suppression reads Twilio's)."""
    defer_until: int = 0
    """When a deferred job (quiet hours, frequency cap) may be tried again, UTC ms."""
    claim: int = 0
    """The row's ``attempts`` while this process owns it: every later write checks it, so a
    claim that outlived its lease (and was taken over) can neither send nor record."""


def new_id() -> str:
    """A fresh message id."""
    return str(uuid.uuid4())


def enqueue(
    conn: Connection,
    template: str,
    channel: str,
    contact: str,
    context: dict[str, Any] | None = None,
    transactional: bool = False,
    message_id: str | None = None,
    journey: str | None = None,
) -> str:
    """Store one message to send (``pending``); its id is the message id."""
    mid = message_id or new_id()
    now = now_ms()
    conn.execute(
        "INSERT INTO message_sends (id, template, channel, contact, journey, transactional, "
        "context, state, next_attempt_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            mid,
            template,
            channel,
            contact,
            journey,
            int(transactional),
            orjson.dumps(context or {}).decode(),
            now,
            now,
            now,
        ),
    )
    return mid


def job_of(row: dict[str, Any]) -> Job:
    return Job(
        id=row["id"],
        template=row["template"],
        channel=row["channel"],
        contact=row["contact"],
        broadcast_id=row["broadcast_id"],
        journey=row["journey"],
        transactional=bool(row["transactional"]),
        context=orjson.loads(row["context"] or "{}"),
        attempts=int(row["attempts"]),
    )


def traits_for(conn: Connection, contacts: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Profile traits per contact point (email/phone identity), in few statements."""
    out: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(contacts))
    for part in chunks(wanted):
        rows = conn.all(
            "SELECT i.value AS contact, p.traits AS traits FROM profile_identities i "
            "JOIN profiles p ON p.id = i.profile_id WHERE i.kind IN ('email', 'phone') "
            f"AND i.value IN ({marks(part)})",
            part,
        )
        for r in rows:
            out[r["contact"]] = orjson.loads(r["traits"] or "{}")
    return out


def claim(
    conn: Connection,
    limit: int,
    ids: Sequence[str] | None = None,
    broadcast: str | None = None,
    lease_ms: int = 60_000,
) -> list[Job]:
    """Lease due rows: the given ids, else one broadcast's, else those of no broadcast."""
    now = now_ms()
    due = (
        "((state = 'pending' AND next_attempt_at <= ?) OR (state = 'sending' AND lease_until < ?))"
    )
    params: list[Any] = [now, now]
    if ids is not None:
        scope = f"id IN ({marks(ids)})"
        params += list(ids)
    elif broadcast is not None:
        scope = "broadcast_id = ?"
        params.append(broadcast)
    else:
        scope = "broadcast_id IS NULL"
    sql = f"SELECT {COLUMNS} FROM message_sends WHERE {due} AND {scope} LIMIT ?"
    params.append(limit)
    if conn.dialect == "postgresql":
        sql += " FOR UPDATE SKIP LOCKED"
    probe = f"SELECT 1 FROM message_sends WHERE {due} AND {scope} LIMIT 1"
    if not conn.scalar(probe, params[:-1]):
        return []
    with conn.transaction():
        jobs = [job_of(r) for r in conn.all(sql, params)]
        for job in jobs:
            job.claim = job.attempts + 1
        if jobs:
            mark(conn, jobs, "sending", lease=now + lease_ms, attempt=True)
    return jobs


def mark(
    conn: Connection, jobs: Sequence[Job], state: str, lease: int = 0, attempt: bool = False
) -> None:
    """Move jobs to ``state`` (with a lease while in flight)."""
    now = now_ms()
    bump = ", attempts = attempts + 1" if attempt else ""
    for chunk in chunks(jobs):
        part = [j.id for j in chunk]
        conn.execute(
            f"UPDATE message_sends SET state = ?, lease_until = ?, updated_at = ?{bump} "
            f"WHERE id IN ({marks(part)})",
            [state, lease, now, *part],
        )


# --- rendering and delivery -----------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """Per-batch data for rendering: templates, signing key, base URL."""

    templates: dict[str, TemplateIn]
    key: bytes
    base_url: str
    track_clicks: bool = False
    """Marketing email links go through our redirect (setting ``click_tracking``)."""


def prepare_batch(conn: Connection, settings: Settings, jobs: list[Job]) -> Prepared:
    """Templates, traits and the link key for a batch (reads only)."""
    names = {j.template for j in jobs}
    templates = {}
    for name in names:
        try:
            templates[name] = load(conn, name)
        except PayloadError:
            continue
        except Exception:  # noqa: S112 - a deleted template fails its rows below
            continue
    traits = traits_for(conn, [j.contact for j in jobs])
    for job in jobs:
        job.traits = traits.get(job.contact, {})
    base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    return Prepared(templates, links.secret_key(conn, settings), base, settings.click_tracking)


def check_suppression(conn: Connection, jobs: list[Job]) -> None:
    """Suppressed contact points get nothing, transactional included (checked before consent:
    an address that bounces or complained is not reachable whatever its subscription)."""
    found = suppression.active(conn, ((j.contact, j.channel) for j in jobs), now_ms())
    for job in jobs:
        entry = found.get((job.contact, job.channel))
        if entry is not None and not job.outcome:
            job.outcome = "dropped"
            job.error = f"suppressed: {entry['reason']}"
            if entry["detail"]:
                job.error += f" ({entry['detail']})"


def check_consent(conn: Connection, jobs: list[Job], prep: Prepared) -> None:
    """Marketing rows need a subscribed contact point (and no opted-out group)."""
    keys = []
    for job in jobs:
        tpl = prep.templates.get(job.template)
        keys.append((job.contact, job.channel, ""))
        if tpl and tpl.subscription_group:
            keys.append((job.contact, job.channel, tpl.subscription_group))
    states = consent.load_states(conn, keys)
    erased = suppress.blocked(conn, [job.contact for job in jobs])
    for job in jobs:
        tpl = prep.templates.get(job.template)
        if job.contact in erased:  # even transactional: the person was erased
            job.outcome, job.error = "dropped", ERASED_ERROR
            continue
        if job.outcome or job.transactional or (tpl is not None and tpl.kind == "transactional"):
            continue
        channel = states.get((job.contact, job.channel, ""))
        status = channel["status"] if channel else NO_STATUS
        if status != "subscribed":
            job.outcome, job.error = "dropped", f"not_subscribed: {job.channel} is {status}"
            continue
        if tpl and tpl.subscription_group:
            group = states.get((job.contact, job.channel, tpl.subscription_group))
            if group and group["status"] in ("unsubscribed", "did_not_subscribe", PENDING):
                job.outcome = "dropped"
                job.error = f"not_subscribed: group {tpl.subscription_group!r} is {group['status']}"


def compose(job: Job, prep: Prepared) -> Outgoing | None:
    """Render the job's message; a template error fails the job (named in its error)."""
    tpl = prep.templates.get(job.template)
    if tpl is None:
        job.outcome, job.error = "failed", f"template_missing: {job.template}"
        return None
    if isinstance(job.context.get("traits"), dict):
        job.traits = job.context["traits"]
    who = links.Recipient(job.channel, job.contact, tpl.subscription_group)
    unsubscribe, preferences = links.urls(prep.base_url, links.sign(prep.key, who))
    context = {
        "profile": job.traits,
        "traits": job.traits,
        "event": job.context.get("event", {}),
        "data": job.context.get("data", {}),
        "contact": {"channel": job.channel, "address": job.contact},
        "unsubscribe_url": unsubscribe,
        "preferences_url": preferences,
        "message_id": job.id,
    }
    strict = not job.context.get("test")
    try:
        rendered: Rendered = render(tpl, context, strict=strict)
    except PayloadError as exc:
        job.outcome, job.error = "failed", f"template_error: {exc.message}"
        return None
    if job.context.get("test") and rendered.subject is not None:
        rendered.subject = f"[TEST] {rendered.subject}"
    headers: dict[str, str] = {}
    if prep.track_clicks and rendered.html and tpl.kind == "marketing":
        rendered.html = tracking.rewrite(rendered.html, prep.base_url, prep.key, job.id)
    if job.channel == "email" and tpl.kind == "marketing":
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return Outgoing(job.id, job.channel, job.contact, rendered, headers)


async def hand_over(
    provider: Provider,
    items: list[tuple[Job, Outgoing]],
    commit_handed: Any,
    concurrency: int,
    blocking: bool = False,
) -> None:
    """Send in waves of ``concurrency``: prepare each, commit the point of no return when the
    provider needs it (one commit per wave), release all at once, then read the replies.

    ``blocking`` commits on the loop's own thread (a dedicated sending loop), so nothing runs
    between the commit and the release; otherwise the commit runs on a worker thread."""
    for start in range(0, len(items), concurrency):
        await _wave(provider, items[start : start + concurrency], commit_handed, blocking)


async def _wave(
    provider: Provider, items: list[tuple[Job, Outgoing]], commit_handed: Any, blocking: bool
) -> None:
    async def prep(job: Job, msg: Outgoing) -> tuple[Job, Any] | None:
        try:
            return job, await provider.prepare(msg)
        except ProviderError as exc:
            _failed(job, exc)
            return None

    ready = [p for p in await asyncio.gather(*(prep(j, m) for j, m in items)) if p]
    if not provider.repeatable_finish and ready:
        done = [j for j, _ in ready]
        try:
            if blocking:
                kept: set[str] = commit_handed(done)
            else:
                kept = await asyncio.to_thread(commit_handed, done)
        except BaseException:
            for _, handle in ready:
                await provider.abandon(handle)
            raise
        for job, handle in ready:
            if job.id in kept:
                provider.release(handle)
        for job, handle in [(j, h) for j, h in ready if j.id not in kept]:
            job.outcome = "superseded"  # another process took the row over: it sends it
            await provider.abandon(handle)
        ready = [(j, h) for j, h in ready if j.id in kept]

    async def fin(job: Job, handle: Any) -> None:
        try:
            job.accepted = await provider.finish(handle)
            job.outcome = "sent"
        except ProviderError as exc:
            _failed(job, exc)

    await asyncio.gather(*(fin(j, h) for j, h in ready))


def _failed(job: Job, exc: ProviderError) -> None:
    job.error = exc.message
    job.error_code = exc.provider_code
    job.outcome = "failed"
    job.retry = not is_terminal(exc)
