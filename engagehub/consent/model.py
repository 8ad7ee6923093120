"""Consent vocabulary: channels, states, contact keys, and one change to a subscription."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engagehub.consent.phones import fast_e164
from engagehub.contacts import ContactError, normalize_email, normalize_phone
from engagehub.errors import PayloadError

CHANNELS = ("email", "sms", "whatsapp", "push")
STATUSES = ("subscribed", "unsubscribed", "did_not_subscribe")
NO_STATUS = "no_status"
PENDING = "pending"
"""Double opt-in: asked to subscribe, not confirmed yet (engagehub writes it; clients can't)."""
BUILTIN_SOURCE = "engagehub"

# Segment Public API / messaging_subscriptions types -> our channel.
TYPES = {
    "EMAIL": "email",
    "SMS": "sms",
    "WHATSAPP": "whatsapp",
    "IOS_PUSH": "push",
    "ANDROID_PUSH": "push",
    "PUSH": "push",
}

# Reasons that mean the person acted themselves: a bulk API/CSV call may not undo them.
OWN_ACTIONS = frozenset(
    (
        "keyword",
        "link",
        "preferences",
        "spam_report",
        "vendor_unsubscribe",
        "user_request",
        "double_opt_in",
    )
)
PROTECTED = OWN_ACTIONS | {"hard_bounce"}
"""Reasons whose unsubscribe a bulk resubscribe may not undo (the state's ``own_action``)."""
RESUBSCRIBING = ("subscribed", PENDING)
"""Statuses a change moves to that would undo an unsubscribe."""


def status_of(value: object, field: str = "status") -> str:
    """``SUBSCRIBED``, ``did-not-subscribe``... -> a canonical state, or a clear error."""
    text = str(value or "").strip().lower().replace("-", "_").replace(" ", "_")
    if text in STATUSES:
        return text
    raise PayloadError(
        f"unknown subscription status {value!r}; expected subscribed, unsubscribed or "
        "did_not_subscribe",
        field=field,
        value=value,
    )


def contact_for(channel: str, key: object, region: str) -> str:
    """The normal form of a contact point for a channel (email lowercased, phone E.164)."""
    if not isinstance(key, str | int) or not str(key).strip():
        raise PayloadError("missing contact key", field="key", value=key)
    text = str(key).strip()
    try:
        if channel == "email":
            return normalize_email(text)
        if channel in ("sms", "whatsapp"):
            return fast_e164(text) or normalize_phone(text, region)
    except ContactError as exc:
        raise PayloadError(str(exc), field="key", value=text) from None
    return text


def contact_forms(key: object, channels: list[str] | tuple[str, ...], region: str) -> list[str]:
    """Normal forms a lookup key may have on these channels (email, phone, or as given)."""
    found = []
    for channel in channels:
        try:
            found.append(contact_for(channel, key, region))
        except PayloadError:
            continue
    return list(dict.fromkeys(found))


@dataclass(slots=True)
class Change:
    """One requested change of one subscription (whole channel when ``group`` is empty)."""

    contact: str
    channel: str
    status: str
    group: str = ""
    reason: str | None = None
    allow_resubscribe: bool = False

    @property
    def own_action(self) -> bool:
        """Whether the person made this change themselves."""
        return self.reason in OWN_ACTIONS


def resubscribe_refused(state: Mapping[str, Any] | None, change: Change) -> bool:
    """The one own-action rule (API, CSV import, processor): a person's own unsubscribe, or a
    hard bounce, stands against a resubscribe they did not make themselves, unless the change
    says ``allow_resubscribe``. ``state`` is a row of ``store.load_states`` (or None)."""
    return (
        state is not None
        and state["status"] == "unsubscribed"
        and bool(state["own_action"])
        and change.status in RESUBSCRIBING
        and not change.own_action
        and not change.allow_resubscribe
    )


def refused_sql(state: str = "s", change: str = "c") -> str:
    """``resubscribe_refused`` over a ``subscription_states`` row and a staged change row, for
    set-based paths; binds one parameter: 1 when the change may override (its
    ``allow_resubscribe``, or the person's own action), else 0."""
    statuses = ", ".join(f"'{s}'" for s in RESUBSCRIBING)
    return (
        f"({state}.status = 'unsubscribed' AND {state}.own_action <> 0 "
        f"AND {change}.status IN ({statuses}) AND ? = 0)"
    )
