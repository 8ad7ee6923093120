"""Which suppression signals an event carries, and the state a contact point's signals lead to.

Both are pure. A signal is one fact about one contact point (``contact``, ``channel``): it must
not be sent to (hard bounce, spam complaint, invalid/unreachable number, carrier violation,
an operator's entry), it bounced softly, it was delivered to, or an operator lifted it.
``fold`` applies every signal of one contact point in ``(event_time, seq)`` order, so the
result never depends on the order the events arrived in (a bounce arriving after a later
delivery does not suppress; a delivery after a bounce lifts it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from engagehub import yamltext
from engagehub.consent.model import contact_for
from engagehub.errors import PayloadError
from engagehub.model import StoredEvent

ADDED, REMOVED = "Suppression Added", "Suppression Removed"
REASONS = (
    "hard_bounce",
    "soft_bounce",
    "spam_complaint",
    "invalid_number",
    "unreachable",
    "blocked",
    "carrier_violation",
    "invalid_token",
    "manual",
)
# A later successful delivery proves the address works again: these reasons end with it.
ADDRESS_REASONS = frozenset(
    ("hard_bounce", "soft_bounce", "invalid_number", "unreachable", "invalid_token")
)
_FAILED = {
    "SMS Failed": "sms",
    "SMS Undelivered": "sms",
    "SMS Rejected": "sms",
    "WhatsApp Message Failed": "whatsapp",
    "WhatsApp Message Undelivered": "whatsapp",
}
_DELIVERED = {
    "Email Delivered": "email",
    "SMS Delivered": "sms",
    "WhatsApp Message Delivered": "whatsapp",
    "Push Delivered": "push",
}
RELEVANT = (
    "Email Bounced",
    "Email Soft Bounced",
    "Email Marked as Spam",
    "Push Bounced",
    ADDED,
    REMOVED,
    *_FAILED,
    *_DELIVERED,
)
WHERE = "event IN (" + ", ".join(f"'{e}'" for e in RELEVANT) + ")"
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rule:
    """The soft-bounce rule: ``count`` soft bounces within ``days`` (with no delivery between)
    suppress the contact point for ``suppress_days``."""

    count: int = 3
    days: float = 7.0
    suppress_days: float = 14.0


@dataclass(frozen=True, slots=True)
class Signal:
    """One fact about one contact point, from one event of the log."""

    contact: str
    channel: str
    kind: str  # suppress | soft | delivered | lift
    event_time: int
    seq: int
    reason: str = ""
    detail: str = ""
    expires_at: int | None = None
    message_id: str | None = None
    source: str = ""


@dataclass(slots=True)
class State:
    """A suppressed contact point: why, since when, until when (None: until lifted)."""

    reason: str
    detail: str
    event_time: int
    seq: int
    expires_at: int | None
    message_id: str | None
    source: str = ""


@functools.cache
def error_codes() -> dict[str, dict[int, dict[str, str]]]:
    """Provider error codes that suppress (``data/codes.yaml``), loaded once."""
    text = (resources.files("engagehub.suppression") / "data" / "codes.yaml").read_text("utf-8")
    data: dict[str, dict[int, dict[str, str]]] = yamltext.safe_load(text)
    return data


def code_reason(code: object) -> tuple[str, str] | None:
    """(reason, title) of a Twilio error code that suppresses the recipient, else None."""
    try:
        number = int(str(code).strip())
    except ValueError:
        return None
    entry = error_codes()["twilio"].get(number)
    return (entry["reason"], f"{number} {entry['title']}") if entry else None


def signals_of(ev: StoredEvent, region: str) -> Iterator[Signal]:
    """The signals one event carries (none for malformed contacts: never fail a batch)."""
    props = ev.properties
    name = ev.event or ""
    try:
        if name in (ADDED, REMOVED):
            channel = str(props.get("channel") or ev.channel or "")
            contact = str(props.get("contact") or ev.contact or "")
            if not contact or not channel:
                return
            if name == REMOVED:
                yield Signal(contact, channel, "lift", ev.event_time, ev.seq, "manual")
                return
            expires = props.get("expires_at")
            yield Signal(
                contact,
                channel,
                "suppress",
                ev.event_time,
                ev.seq,
                str(props.get("reason") or "manual"),
                str(props.get("detail") or ""),
                int(expires) if isinstance(expires, int | float) else None,
            )
            return
        if name in _DELIVERED:
            channel = _DELIVERED[name]
            yield _signal(ev, channel, "delivered", "", "", region)
        elif name == "Email Bounced":
            hard = str(props.get("bounce_type") or "hard") == "hard"
            detail = str(props.get("bounce_reason") or props.get("reason") or "")
            kind, reason = ("suppress", "hard_bounce") if hard else ("soft", "soft_bounce")
            yield _signal(ev, "email", kind, reason, detail, region)
        elif name == "Email Soft Bounced":
            detail = str(props.get("bounce_reason") or props.get("reason") or "")
            yield _signal(ev, "email", "soft", "soft_bounce", detail, region)
        elif name == "Email Marked as Spam":
            yield _signal(ev, "email", "suppress", "spam_complaint", "", region)
        elif name == "Push Bounced":
            yield _signal(ev, "push", "suppress", "invalid_token", "", region)
        elif name in _FAILED:
            found = code_reason(props.get("error_code"))
            if found is not None:
                yield _signal(ev, _FAILED[name], "suppress", found[0], found[1], region)
    except PayloadError:
        return


def _signal(
    ev: StoredEvent, channel: str, kind: str, reason: str, detail: str, region: str
) -> Signal:
    props = ev.properties
    key = props.get("email") if channel == "email" else props.get("phone")
    if channel == "push":
        key = props.get("token") or props.get("push_token") or ev.contact
    contact = contact_for(channel, key or ev.contact, region)
    return Signal(
        contact, channel, kind, ev.event_time, ev.seq, reason, detail[:500], None, ev.message_id
    )


def fold(signals: Iterable[Signal], rule: Rule) -> State | None:
    """The state every signal of one contact point leads to, applied in (time, seq) order."""
    state: State | None = None
    softs: list[int] = []
    for s in sorted(signals, key=lambda s: (s.event_time, s.seq)):
        if s.kind == "delivered":
            softs.clear()
            if state is not None and state.reason in ADDRESS_REASONS:
                state = None
        elif s.kind == "lift":
            softs.clear()
            state = None
        elif s.kind == "suppress":
            if state is None or state.reason == "soft_bounce" or s.reason != "soft_bounce":
                state = State(
                    s.reason, s.detail, s.event_time, s.seq, s.expires_at, s.message_id, s.source
                )
        elif s.kind == "soft":
            since = s.event_time - int(rule.days * DAY_MS)
            softs = [t for t in softs if t > since] + [s.event_time]
            if len(softs) >= rule.count and (state is None or state.reason == "soft_bounce"):
                detail = f"{len(softs)} soft bounces within {rule.days:g} days"
                if s.detail:
                    detail += f"; last: {s.detail}"
                until = s.event_time + int(rule.suppress_days * DAY_MS)
                state = State(
                    "soft_bounce", detail[:500], s.event_time, s.seq, until, s.message_id, s.source
                )
    return state
