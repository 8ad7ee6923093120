"""One message's lifecycle, and what it contributes to campaign rollups.

A lifecycle keeps the first time of each milestone (``min``), so any order of the same events
gives the same row. Rollups are not incremented event by event: each change to a message
subtracts what the message contributed before and adds what it contributes now, so a late
earlier event, a campaign or variation learnt late, or a conversion found late all move counts
to the right bucket and dimension without double counting.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from engagehub.model import StoredEvent

HOUR_MS = 3_600_000
# Dashboard rows for bounces and clicks the vendor sent without a reason or a URL: every
# bounce and click is counted somewhere, so the tables add up to the totals.
NO_REASON = "(no reason given)"
NO_URL = "(no URL)"

# Canonical action -> lifecycle milestone (unknown actions leave the lifecycle alone).
MILESTONE_OF_ACTION = {
    "queued": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sending": "queued",
    "processed": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "deferred": "deferred",
    "soft_bounced": "soft_bounced",
    "bounced": "bounced",
    "failed": "failed",
    "undelivered": "failed",
    "rejected": "failed",
    "dropped": "failed",
    "canceled": "failed",
    "aborted": "failed",
    "retried": "deferred",
    "opened": "opened",
    "viewed": "opened",
    "shown": "opened",
    "machine_opened": "machine_opened",
    "clicked": "clicked",
    "unsubscribed": "unsubscribed",
    "group_unsubscribed": "unsubscribed",
    "spam_reported": "spam",
    "read": "read",
}
MILESTONES = (
    "queued",
    "sent",
    "delivered",
    "deferred",
    "soft_bounced",
    "bounced",
    "opened",
    "machine_opened",
    "clicked",
    "unsubscribed",
    "spam",
    "failed",
    "read",
)
# Final status: the highest-ranked milestone reached (order of arrival does not matter).
_STATUS_RANK = (
    "queued",
    "sent",
    "deferred",
    "soft_bounced",
    "delivered",
    "read",
    "opened",
    "clicked",
    "failed",
    "bounced",
    "spam",
    "unsubscribed",
)
# Milestones that prove the message left the sender (a "sent" count even without Sent events).
_AFTER_SEND = ("delivered", "deferred", "soft_bounced", "bounced", "opened", "clicked", "read")
_TOTALS = {
    "opened": "opens_total",
    "machine_opened": "machine_opens_total",
    "clicked": "clicks_total",
}

Message = dict[str, Any]
Key = tuple[str, str, str, str, int, str, str]
"""(campaign, channel, variation, step, hour bucket, metric, detail)."""


def new_message(message_id: str) -> Message:
    """An empty lifecycle."""
    msg: Message = {"message_id": message_id, "last_seq": 0, "state": {}}
    for column in ("campaign_id", "campaign_name", "channel", "variation", "step"):
        msg[column] = None
    for column in ("user_id", "contact", "converted_at", "goal_id", "status"):
        msg[column] = None
    for m in MILESTONES:
        msg[f"first_{m}"] = None
    return msg


def bucket(ms: int) -> int:
    """Start of the UTC hour holding ``ms``."""
    return ms - ms % HOUR_MS


def _min(a: int | None, b: int) -> int:
    return b if a is None or b < a else a


def _first_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _better_reason(new: list[Any], current: list[Any] | None) -> bool:
    """A given reason beats the placeholder whatever the times; else the earliest wins."""
    if current is None:
        return True
    new_given: bool = new[1] != NO_REASON
    if new_given != (current[1] != NO_REASON):
        return new_given
    return bool(new < current)


def _pick(current: str | None, new: str | None) -> str | None:
    """Dimensions: the smallest value seen, so arrival order cannot change the result."""
    if new is None:
        return current
    return new if current is None or new < current else current


def apply_event(msg: Message, ev: StoredEvent, action: str) -> None:
    """Fold one event into the lifecycle (the caller skips events already applied)."""
    props = ev.properties
    msg["last_seq"] = max(msg["last_seq"], ev.seq)
    msg["campaign_id"] = _pick(
        msg["campaign_id"], ev.campaign_id or _first_text(props.get("journey_id"))
    )
    msg["campaign_name"] = _pick(
        msg["campaign_name"],
        _first_text(props.get("campaign_name")) or _first_text(props.get("journey_name")),
    )
    if ev.channel and ev.channel != "message":
        msg["channel"] = _pick(msg["channel"], ev.channel)
    msg["variation"] = _pick(
        msg["variation"],
        _first_text(props.get("variation_id")) or _first_text(props.get("journey_variation_id")),
    )
    msg["step"] = _pick(msg["step"], _first_text(props.get("step_id")))
    msg["user_id"] = _pick(msg["user_id"], ev.user_id)
    msg["contact"] = _pick(msg["contact"], ev.contact)
    span = msg["state"].setdefault("span", [ev.event_time, ev.event_time])
    span[0], span[1] = min(span[0], ev.event_time), max(span[1], ev.event_time)
    milestone = MILESTONE_OF_ACTION.get(action)
    if milestone == "opened" and props.get("machine_open") in (True, "true", 1):
        milestone = "machine_opened"
    if milestone is None:
        return
    column = f"first_{milestone}"
    msg[column] = _min(msg[column], ev.event_time)
    state = msg["state"]
    total = _TOTALS.get(milestone)
    if total:
        per = state.setdefault(total, {})
        b = str(bucket(ev.event_time))
        per[b] = per.get(b, 0) + 1
    url = _first_text(props.get("url")) or NO_URL
    if milestone == "clicked":
        links = state.setdefault("links", {})
        links[url] = _min(links.get(url), ev.event_time)
        per = state.setdefault("link_totals", {}).setdefault(url, {})
        b = str(bucket(ev.event_time))
        per[b] = per.get(b, 0) + 1
    if milestone in ("bounced", "soft_bounced", "failed"):
        reason = _first_text(props.get("bounce_reason")) or _first_text(
            props.get("error_message") or props.get("drop_reason") or props.get("error_code")
        )
        entry = [ev.event_time, reason[:200] if reason else NO_REASON]
        if _better_reason(entry, state.get("reason")):
            state["reason"] = entry


def merge(into: Message, other: Message) -> None:
    """Fold another lifecycle of the same message (known by its provider id) into this one."""
    for m in MILESTONES:
        column = f"first_{m}"
        if other[column] is not None:
            into[column] = _min(into[column], other[column])
    for column in ("campaign_id", "campaign_name", "channel", "variation", "step"):
        into[column] = _pick(into[column], other[column])
    for column in ("user_id", "contact"):
        into[column] = _pick(into[column], other[column])
    into["last_seq"] = max(into["last_seq"], other["last_seq"])
    mine, theirs = into["state"], other["state"]
    for total in _TOTALS.values():
        for b, n in theirs.get(total, {}).items():
            per = mine.setdefault(total, {})
            per[b] = per.get(b, 0) + n
    for url, first in theirs.get("links", {}).items():
        links = mine.setdefault("links", {})
        links[url] = _min(links.get(url), first)
    for url, buckets in theirs.get("link_totals", {}).items():
        per = mine.setdefault("link_totals", {}).setdefault(url, {})
        for b, n in buckets.items():
            per[b] = per.get(b, 0) + n
    if theirs.get("reason") is not None and _better_reason(theirs["reason"], mine.get("reason")):
        mine["reason"] = theirs["reason"]
    if theirs.get("span"):
        span = mine.setdefault("span", list(theirs["span"]))
        span[0], span[1] = min(span[0], theirs["span"][0]), max(span[1], theirs["span"][1])


def sent_at(msg: Message) -> int | None:
    """When the message was sent: its Sent event, else the first sign it left the sender."""
    if msg["first_sent"] is not None:
        return int(msg["first_sent"])
    times = [msg[f"first_{m}"] for m in _AFTER_SEND if msg[f"first_{m}"] is not None]
    return min(times) if times else None


def anchor(msg: Message) -> int | None:
    """Conversion windows start at delivery, or at send where no delivery receipt came."""
    if msg["first_delivered"] is not None:
        return int(msg["first_delivered"])
    return sent_at(msg)


def status(msg: Message) -> str | None:
    """Final status: the highest-ranked milestone reached."""
    found = None
    for name in _STATUS_RANK:
        if msg[f"first_{name}"] is not None:
            found = name
    return found


def contributions(msg: Message) -> Counter[Key]:
    """Every rollup count this message accounts for (nothing until its campaign is known)."""
    out: Counter[Key] = Counter()
    campaign = msg["campaign_id"]
    if not campaign:
        return out
    dims = (campaign, msg["channel"] or "", msg["variation"] or "", msg["step"] or "")

    def add(when: int | None, metric: str, detail: str = "", n: int = 1) -> None:
        if when is not None:
            out[(*dims, bucket(when), metric, detail)] += n

    add(sent_at(msg), "sent")
    for m in MILESTONES:
        if m != "sent":
            add(msg[f"first_{m}"], m)
    add(msg["converted_at"], "converted")
    if msg["converted_at"] is not None:
        add(msg["converted_at"], "goal_converted", str(msg["goal_id"]))
    state = msg["state"]
    for total in _TOTALS.values():
        for b, n in state.get(total, {}).items():
            out[(*dims, int(b), total, "")] += n
    for url, first in state.get("links", {}).items():
        add(first, "link_unique", url)
    for url, per in state.get("link_totals", {}).items():
        for b, n in per.items():
            out[(*dims, int(b), "link_clicks", url)] += n
    reason = state.get("reason")
    if reason is not None:
        add(reason[0], "bounce_reason", reason[1])
    return out
