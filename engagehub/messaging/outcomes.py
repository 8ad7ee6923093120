"""Outcomes of sends: row states and their canonical events in the log, in one transaction.

Events are appended under the built-in source with dedup keys ``msg:{message id}:{event}``, so
a replayed result never duplicates them; ``message_id`` on each lets vendor webhooks attach.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from engagehub.consent import store as consent
from engagehub.messaging.providers.base import Accepted
from engagehub.messaging.sender import COLUMNS, ERASED_ERROR, Job, job_of
from engagehub.model import IncomingEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms


def settle_stale_handed(conn: Connection) -> int:
    """``handed`` rows whose process died before the reply: sent (never resent)."""
    now = now_ms()
    if not conn.scalar(
        "SELECT 1 FROM message_sends WHERE state = 'handed' AND lease_until < ? LIMIT 1", (now,)
    ):
        return 0
    with conn.transaction():
        rows = conn.all(
            f"SELECT {COLUMNS} FROM message_sends WHERE state = 'handed' AND lease_until < ?",
            (now,),
        )
        jobs = [job_of(r) for r in rows]
        for job in jobs:
            job.claim = job.attempts
            job.outcome = "sent"
            job.accepted = Accepted(None, "unconfirmed")
        if jobs:
            record(conn, jobs, "unknown")
    return len(jobs)


def record(conn: Connection, jobs: Sequence[Job], provider: str, max_attempts: int = 5) -> None:
    """Write outcomes and their canonical events in one transaction."""
    now = now_ms()
    events: list[IncomingEvent] = []
    with conn.transaction():
        for job in jobs:
            if job.outcome == "superseded":
                continue
            if job.outcome == "dropped" and job.error == ERASED_ERROR:
                # queued for a person erased since: cancelled, nothing of them kept, no event
                conn.execute(
                    "UPDATE message_sends SET state = 'dropped', contact = ?, context = '{}', "
                    "error = ?, lease_until = 0, updated_at = ? WHERE id = ?",
                    (f"[erased:{job.id}]", job.error, now, job.id),
                )
                continue
            if job.outcome == "deferred":  # not an attempt: it waits, then goes as if new
                conn.execute(
                    "UPDATE message_sends SET state = 'pending', next_attempt_at = ?, "
                    "lease_until = 0, attempts = attempts - 1, defer_reason = ?, updated_at = ? "
                    "WHERE id = ? AND attempts = ?",
                    (job.defer_until, job.error, now, job.id, job.claim),
                )
                events.extend(events_for(job, provider, now))
                continue
            if job.outcome == "failed" and job.retry and job.claim < max_attempts:
                delay = min(300_000, 1000 * 2**job.claim)
                conn.execute(
                    "UPDATE message_sends SET state = 'pending', next_attempt_at = ?, "
                    "lease_until = 0, error = ?, updated_at = ? WHERE id = ? AND attempts = ?",
                    (now + delay, job.error, now, job.id, job.claim),
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
    ("email", "deferred"): ("Email Send Deferred",),
    ("sms", "deferred"): ("SMS Send Deferred",),
}


def events_for(job: Job, provider: str, now: int) -> list[IncomingEvent]:
    """Canonical events of one outcome, keyed on the message id (exactly once in the log)."""
    names = _EVENTS.get((job.channel, job.outcome), ())
    if job.accepted is not None and job.accepted.status == "unconfirmed":
        names = names[:1]  # handed over, no reply: sent, not known to be processed
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
    if job.accepted and job.accepted.status == "unconfirmed":
        props["unconfirmed"] = True
    if job.outcome == "dropped":
        props["drop_reason"] = (job.error or "").split(":", 1)[0]
        props["drop_detail"] = job.error
    elif job.outcome == "failed":
        props["drop_reason" if job.channel == "email" else "error"] = job.error
        if job.error_code:
            props["error_code"] = job.error_code
    suffix = ""
    if job.outcome == "deferred":
        props["defer_reason"] = (job.error or "").split(":", 1)[0]
        props["defer_detail"] = job.error
        props["resume_at"] = format_ts(job.defer_until)
        suffix = f":{job.defer_until}"  # each deferral once
    return [
        IncomingEvent(
            dedup_key=f"msg:{job.id}:{name}{suffix}",
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
