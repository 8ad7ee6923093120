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
from engagehub.consent.model import NO_STATUS
from engagehub.errors import PayloadError
from engagehub.messaging import links
from engagehub.messaging.providers import Accepted, Outgoing, Provider, ProviderError
from engagehub.messaging.templates import Rendered, TemplateIn, load, render
from engagehub.model import IncomingEvent
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

OPEN_STATES = ("pending", "sending", "handed")
_COLUMNS = "id, template, channel, contact, broadcast_id, journey, transactional, context, attempts"


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


def _job(row: dict[str, Any]) -> Job:
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
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = conn.all(
            "SELECT i.value AS contact, p.traits AS traits FROM profile_identities i "
            "JOIN profiles p ON p.id = i.profile_id WHERE i.kind IN ('email', 'phone') "
            f"AND i.value IN ({', '.join('?' * len(part))})",
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
        scope = f"id IN ({', '.join('?' * len(ids))})"
        params += list(ids)
    elif broadcast is not None:
        scope = "broadcast_id = ?"
        params.append(broadcast)
    else:
        scope = "broadcast_id IS NULL"
    sql = f"SELECT {_COLUMNS} FROM message_sends WHERE {due} AND {scope} LIMIT ?"
    params.append(limit)
    if conn.dialect == "postgresql":
        sql += " FOR UPDATE SKIP LOCKED"
    probe = f"SELECT 1 FROM message_sends WHERE {due} AND {scope} LIMIT 1"
    if not conn.scalar(probe, params[:-1]):
        return []
    with conn.transaction():
        jobs = [_job(r) for r in conn.all(sql, params)]
        if jobs:
            mark(conn, jobs, "sending", lease=now + lease_ms, attempt=True)
    return jobs


def mark(
    conn: Connection, jobs: Sequence[Job], state: str, lease: int = 0, attempt: bool = False
) -> None:
    """Move jobs to ``state`` (with a lease while in flight)."""
    now = now_ms()
    bump = ", attempts = attempts + 1" if attempt else ""
    for start in range(0, len(jobs), 500):
        part = [j.id for j in jobs[start : start + 500]]
        conn.execute(
            f"UPDATE message_sends SET state = ?, lease_until = ?, updated_at = ?{bump} "
            f"WHERE id IN ({', '.join('?' * len(part))})",
            [state, lease, now, *part],
        )


def settle_stale_handed(conn: Connection) -> int:
    """``handed`` rows whose process died before the reply: sent (never resent)."""
    now = now_ms()
    if not conn.scalar(
        "SELECT 1 FROM message_sends WHERE state = 'handed' AND lease_until < ? LIMIT 1", (now,)
    ):
        return 0
    with conn.transaction():
        rows = conn.all(
            f"SELECT {_COLUMNS} FROM message_sends WHERE state = 'handed' AND lease_until < ?",
            (now,),
        )
        jobs = [_job(r) for r in rows]
        for job in jobs:
            job.outcome = "sent"
            job.accepted = Accepted(None, "unconfirmed")
        if jobs:
            record(conn, jobs, "unknown")
    return len(jobs)


# --- rendering and delivery -----------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """Per-batch data for rendering: templates, signing key, base URL."""

    templates: dict[str, TemplateIn]
    key: bytes
    base_url: str


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
    return Prepared(templates, links.secret_key(conn, settings), base)


def check_consent(conn: Connection, jobs: list[Job], prep: Prepared) -> None:
    """Marketing rows need a subscribed contact point (and no opted-out group)."""
    keys = []
    for job in jobs:
        tpl = prep.templates.get(job.template)
        keys.append((job.contact, job.channel, ""))
        if tpl and tpl.subscription_group:
            keys.append((job.contact, job.channel, tpl.subscription_group))
    states = consent.load_states(conn, keys)
    for job in jobs:
        tpl = prep.templates.get(job.template)
        if job.transactional or (tpl is not None and tpl.kind == "transactional"):
            continue
        channel = states.get((job.contact, job.channel, ""))
        status = channel["status"] if channel else NO_STATUS
        if status != "subscribed":
            job.outcome, job.error = "dropped", f"not_subscribed: {job.channel} is {status}"
            continue
        if tpl and tpl.subscription_group:
            group = states.get((job.contact, job.channel, tpl.subscription_group))
            if group and group["status"] in ("unsubscribed", "did_not_subscribe"):
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
    if job.channel == "email" and tpl.kind == "marketing":
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return Outgoing(job.id, job.channel, job.contact, rendered, headers)


async def hand_over(
    provider: Provider, items: list[tuple[Job, Outgoing]], commit_handed: Any, concurrency: int
) -> None:
    """Send in waves of ``concurrency``: prepare each, commit the point of no return when the
    provider needs it (one commit per wave), then finish them together."""
    for start in range(0, len(items), concurrency):
        await _wave(provider, items[start : start + concurrency], commit_handed)


async def _wave(provider: Provider, items: list[tuple[Job, Outgoing]], commit_handed: Any) -> None:
    async def prep(job: Job, msg: Outgoing) -> tuple[Job, Any] | None:
        try:
            return job, await provider.prepare(msg)
        except ProviderError as exc:
            _failed(job, exc)
            return None

    ready = [p for p in await asyncio.gather(*(prep(j, m) for j, m in items)) if p]
    if not provider.repeatable_finish and ready:
        try:
            await asyncio.to_thread(commit_handed, [j for j, _ in ready])
        except BaseException:
            for _, handle in ready:
                await provider.abandon(handle)
            raise

    async def fin(job: Job, handle: Any) -> None:
        try:
            job.accepted = await provider.finish(handle)
            job.outcome = "sent"
        except ProviderError as exc:
            _failed(job, exc)

    await asyncio.gather(*(fin(j, h) for j, h in ready))


def _failed(job: Job, exc: ProviderError) -> None:
    job.error = exc.message
    job.outcome = "failed"
    job.retry = not exc.terminal


# --- results ---------------------------------------------------------------------------------


def record(conn: Connection, jobs: Sequence[Job], provider: str, max_attempts: int = 5) -> None:
    """Write outcomes and their canonical events in one transaction."""
    now = now_ms()
    events: list[IncomingEvent] = []
    with conn.transaction():
        for job in jobs:
            if job.outcome == "failed" and job.retry and job.attempts + 1 < max_attempts:
                delay = min(300_000, 1000 * 2 ** (job.attempts + 1))
                conn.execute(
                    "UPDATE message_sends SET state = 'pending', next_attempt_at = ?, "
                    "lease_until = 0, error = ?, updated_at = ? WHERE id = ?",
                    (now + delay, job.error, now, job.id),
                )
                continue
            state = job.outcome or "failed"
            pid = job.accepted.provider_message_id if job.accepted else None
            conn.execute(
                "UPDATE message_sends SET state = ?, provider = ?, provider_message_id = ?, "
                "error = ?, lease_until = 0, updated_at = ? WHERE id = ?",
                (state, provider, pid, job.error, now, job.id),
            )
            events.extend(events_for(job, provider, now))
        if events:
            log.append(conn, [log.Batch(consent.builtin_source_id(conn), now, events)])


_EVENTS = {
    ("email", "sent"): ("Email Sent", "Email Processed"),
    ("sms", "sent"): ("SMS Queued",),
    ("email", "dropped"): ("Email Dropped",),
    ("sms", "dropped"): ("SMS Dropped",),
    ("email", "failed"): ("Email Dropped",),
    ("sms", "failed"): ("SMS Failed",),
}


def events_for(job: Job, provider: str, now: int) -> list[IncomingEvent]:
    """Canonical events of one outcome, keyed on the message id (exactly once in the log)."""
    names = _EVENTS.get((job.channel, job.outcome), ())
    props: dict[str, Any] = {
        "message_id": job.id,
        "template": job.template,
        "provider": provider,
        "email" if job.channel == "email" else "phone": job.contact,
    }
    if job.broadcast_id:
        props["broadcast_id"] = job.broadcast_id
    if job.journey:
        props["journey"] = job.journey
    if job.transactional:
        props["transactional"] = True
    if job.accepted and job.accepted.provider_message_id:
        props["provider_message_id"] = job.accepted.provider_message_id
    if job.outcome == "dropped":
        props["drop_reason"] = (job.error or "").split(":", 1)[0]
        props["drop_detail"] = job.error
    elif job.outcome == "failed":
        props["drop_reason" if job.channel == "email" else "error"] = job.error
    return [
        IncomingEvent(
            dedup_key=f"msg:{job.id}:{name}",
            event_time=now,
            raw=orjson.dumps({"message": props, "event": name}).decode(),
            type="track",
            vendor_event=name,
            event=name,
            channel=job.channel,
            contact=job.contact,
            message_id=job.id,
            campaign_id=job.broadcast_id or job.journey,
            properties=props,
        )
        for name in names
    ]
