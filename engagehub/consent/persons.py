"""Vendor events that name a person but no contact point: they apply to the contact points
profiles know for that person on the event's channel (only that channel changes).

A CrossEngage ``Message Unsubscribed`` on SMS for user 42 unsubscribes every phone number of
user 42's profile from SMS; their email stays as it was. Push changes apply to the person's push
tokens (profiles learn them from events carrying ``push_token``: Braze token changes, MoEngage
``push_id``...). Profiles run before consent (see ``registry.processors``), so an identify call
earlier in the log is always seen.

When the person has no contact point on that channel yet (the unsubscribe arrives before the
identify that links their phone), the request waits in ``consent_person_requests`` and is
applied — at the event's own time, so anything newer still wins — in the round where profiles
link a first contact point of that kind to the person (``resolve_waiting``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagehub.consent.changes import changes_of, requests_of
from engagehub.consent.model import Change
from engagehub.model import StoredEvent
from engagehub.profiles import members
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

KINDS = {"email": "email", "sms": "phone", "whatsapp": "phone", "push": "push_token"}
"""Channel -> the profile identity kind of its contact points."""
_PERSON = ("user_id", "braze_id", "anonymous_id")
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
    ids = person_ids(ev)
    if ev.type == "identify" or not ids:
        return found
    for req in requests_of(ev, builtin_source_id, spam_policy, bounce_policy):
        kind = KINDS.get(req.channel)
        if req.key not in (None, "") or kind is None:
            continue
        contacts = contact_points(conn, ev, kind)
        if not contacts:
            _wait(conn, ev.seq, req.channel, ids)
        for contact in contacts:
            found.append(
                Change(
                    contact, req.channel, req.status, req.group, req.reason, req.allow_resubscribe
                )
            )
    return found


def person_ids(ev: StoredEvent) -> list[tuple[str, str]]:
    """The identities of the person an event names (user id, Braze id, anonymous id)."""
    values = (ev.user_id, ev.properties.get("braze_id"), ev.anonymous_id)
    return [(k, v) for k, v in zip(_PERSON, values, strict=True) if isinstance(v, str) and v]


def contact_points(conn: Connection, ev: StoredEvent, kind: str) -> list[str]:
    """Email addresses, phone numbers or push tokens (``kind``) of the event's person."""
    pid = None
    for ident_kind, value in person_ids(ev):
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
    return [value for k, value in members.of(conn, [pid]).get(pid, []) if k == kind]


def _wait(conn: Connection, seq: int, channel: str, ids: Sequence[tuple[str, str]]) -> None:
    conn.executemany(
        "INSERT INTO consent_person_requests (seq, channel, id_kind, id_value, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(seq, channel, kind, value, now_ms()) for kind, value in ids],
    )


def resolve_waiting(
    conn: Connection, bounds: tuple[str, list[Any]], changes_at: Any
) -> list[tuple[StoredEvent, Change]]:
    """The waiting requests a window made applicable (a contact point of their kind is now
    linked to a person an event of the window names), as (original event, change) pairs;
    their rows are deleted. ``changes_at`` is the processor's (it reads profiles again)."""
    if conn.scalar("SELECT 1 FROM consent_person_requests LIMIT 1") is None:
        return []
    cond, params = bounds
    touched = (
        "SELECT pi.profile_id FROM profile_identities pi WHERE pi.value IN ("
        f"SELECT user_id FROM events WHERE {cond} AND user_id IS NOT NULL UNION "
        f"SELECT anonymous_id FROM events WHERE {cond} AND anonymous_id IS NOT NULL UNION "
        f"SELECT contact FROM events WHERE {cond} AND contact IS NOT NULL)"
    )
    rows = conn.all(
        "SELECT DISTINCT r.seq, r.channel FROM consent_person_requests r "
        "JOIN profile_identities rid ON rid.kind = r.id_kind AND rid.value = r.id_value "
        f"WHERE rid.profile_id IN ({touched}) ORDER BY r.seq",
        params * 3,
    )
    out: list[tuple[StoredEvent, Change]] = []
    for row in rows:
        seq, channel = int(row["seq"]), str(row["channel"])
        found = log.read_range(conn, seq - 1, seq)  # empty when the event was erased
        if found and not contact_points(conn, found[0], KINDS[channel]):
            continue  # the person was seen, but still has no contact point of this kind
        conn.execute(
            "DELETE FROM consent_person_requests WHERE seq = ? AND channel = ?", (seq, channel)
        )
        if found:
            changes = changes_at(conn, found[0])
            out.extend((found[0], ch) for ch in changes if ch.channel == channel)
    return out
