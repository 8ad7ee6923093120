"""Unsubscribes a machine made (link scanners, previews): applied, only recorded, or held
until the person confirms, by ``consent_machine_unsubscribe_policy`` (default ``confirm``).

A change is a machine's when its event says so: our own unsubscribe endpoint sets
``machine_reason`` when a scanner's user agent posts it; a vendor's unsubscribe event is one
when ``engagehub.classify`` finds a bot click in it (vendor flag, scanner agent, network).
Held changes are kept in the history (outcome ``machine_recorded`` or ``unconfirmed``) and
change no state; a person's confirmation is a new change without ``machine_reason``.
"""

from __future__ import annotations

from engagehub.classify import click_reason
from engagehub.consent.model import Change
from engagehub.model import StoredEvent

POLICIES = ("record", "confirm", "apply")
_HELD = {"record": "machine_recorded", "confirm": "unconfirmed"}


def machine_reason(ev: StoredEvent, ch: Change) -> str | None:
    """Why this unsubscribe looks like a machine's, or None."""
    if ch.status != "unsubscribed":
        return None
    given = ev.properties.get("machine_reason")
    if isinstance(given, str) and given:
        return given
    if ch.reason == "vendor_unsubscribe":
        return click_reason(ev.properties)
    return None


def held(policy: str, ev: StoredEvent, ch: Change) -> str | None:
    """The history outcome of a machine's unsubscribe the policy does not apply, else None."""
    if policy == "apply":
        return None
    return _HELD[policy] if machine_reason(ev, ch) is not None else None
