"""Vendor events that name a person but no contact point: they apply to the contact points
profiles know for that person on the event's channel (only that channel changes).

A CrossEngage ``Message Unsubscribed`` on SMS for user 42 unsubscribes every phone number of
user 42's profile from SMS; their email stays as it was. Profiles run before consent (see
``registry.processors``), so an identify call earlier in the log is always seen.
"""

from __future__ import annotations

from engagehub.consent.changes import changes_of, requests_of
from engagehub.consent.model import Change
from engagehub.model import StoredEvent
from engagehub.storage.base import Connection

_KINDS = {"email": "email", "sms": "phone", "whatsapp": "phone"}
_MAX_HOPS = 20


def changes_with_people(
    conn: Connection,
    ev: StoredEvent,
    builtin_source_id: int,
    region: str,
    spam_policy: str = "unsubscribe",
    bounce_policy: str = "unsubscribe",
) -> list[Change]:
    """``changes_of``, plus the changes of requests that carry no contact, through profiles."""
    found = list(changes_of(ev, builtin_source_id, region, spam_policy, bounce_policy))
    if ev.type == "identify" or not (ev.user_id or ev.properties.get("braze_id")):
        return found
    for req in requests_of(ev, builtin_source_id, spam_policy, bounce_policy):
        kind = _KINDS.get(req.channel)
        if req.key not in (None, "") or kind is None:
            continue
        for contact in contact_points(conn, ev, kind):
            found.append(
                Change(
                    contact, req.channel, req.status, req.group, req.reason, req.allow_resubscribe
                )
            )
    return found


def contact_points(conn: Connection, ev: StoredEvent, kind: str) -> list[str]:
    """Email addresses or phone numbers (``kind``) of the profile of the event's person."""
    pid = None
    braze = ev.properties.get("braze_id")
    for ident_kind, value in (("user_id", ev.user_id), ("braze_id", braze)):
        if isinstance(value, str) and value:
            pid = conn.scalar(
                "SELECT profile_id FROM profile_identities WHERE kind = ? AND value = ?",
                (ident_kind, value),
            )
            if pid:
                break
    if not pid:
        return []
    for _ in range(_MAX_HOPS):
        merged = conn.scalar("SELECT merged_into FROM profiles WHERE id = ?", (pid,))
        if not merged:
            break
        pid = merged
    rows = conn.all(
        "SELECT value FROM profile_identities WHERE profile_id = ? AND kind = ? ORDER BY value",
        (pid, kind),
    )
    return [str(r["value"]) for r in rows]
