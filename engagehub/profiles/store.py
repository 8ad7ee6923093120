"""Read profiles: find one by any identifier, and assemble its view (identities, traits,
subscriptions, history, latest events)."""

from __future__ import annotations

from typing import Any

import orjson

from engagehub.consent import store as consent
from engagehub.contacts import ContactError, normalize_email, normalize_phone
from engagehub.errors import NotFound
from engagehub.profiles import members
from engagehub.storage import logread
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts


def find(conn: Connection, identifier: str, region: str = "US") -> str:
    """The live profile id for a profile id or any identity value (email, phone, ids)."""
    candidates = [identifier.strip()]
    try:
        candidates.append(normalize_email(identifier))
    except ContactError:
        pass
    try:
        candidates.append(normalize_phone(identifier, region))
    except ContactError:
        pass
    pid: str | None = None
    if conn.scalar("SELECT 1 FROM profiles WHERE id = ?", (identifier,)):
        pid = identifier
    else:
        for value in dict.fromkeys(candidates):
            pid = conn.scalar(
                "SELECT profile_id FROM profile_identities WHERE value = ? ORDER BY kind LIMIT 1",
                (value,),
            )
            if pid:
                break
    if not pid:
        raise NotFound(f"no profile with the identifier {identifier!r}", identifier=identifier)
    seen = set()
    while True:
        merged = conn.scalar("SELECT merged_into FROM profiles WHERE id = ?", (pid,))
        if not merged or pid in seen:
            return str(pid)
        seen.add(pid)
        pid = merged


def view(conn: Connection, pid: str, events: int = 20) -> dict[str, Any]:
    """Everything we know about one profile."""
    row = conn.one("SELECT * FROM profiles WHERE id = ?", (pid,))
    if row is None:
        raise NotFound(f"no profile {pid!r}", profile=pid)
    identities = [
        {"kind": kind, "value": value} for kind, value in members.of(conn, [pid]).get(pid, [])
    ]
    merged = [
        r["id"]
        for r in conn.all("SELECT id FROM profiles WHERE merged_into = ? ORDER BY id", (pid,))
    ]
    contacts = [i["value"] for i in identities if i["kind"] in ("email", "phone")]
    history = consent.history(conn, contacts, 50 * max(1, len(contacts)))
    latest: dict[int, Any] = {}
    for ident in identities:
        if ident["kind"] == "user_id":
            q = logread.EventQuery(limit=events, user_id=ident["value"])
        elif ident["kind"] == "anonymous_id":
            q = logread.EventQuery(limit=events, anonymous_id=ident["value"])
        else:
            continue
        for ev in logread.query(conn, q)[0]:
            latest[ev.seq] = ev
    for contact in contacts:
        for ev in logread.query(conn, logread.EventQuery(limit=events, contact=contact))[0]:
            latest[ev.seq] = ev
    recent = [latest[s] for s in sorted(latest, reverse=True)[:events]]
    return {
        "id": pid,
        "merged_ids": merged,
        "identities": [{"kind": i["kind"], "value": i["value"]} for i in identities],
        "traits": orjson.loads(row["traits"]),
        "first_seen": format_ts(row["first_seen"]),
        "last_seen": format_ts(row["last_seen"]),
        "subscriptions": consent.states_for(conn, contacts),
        "subscription_history": history[:50],
        "events": [
            {
                "event_id": e.event_id,
                "seq": e.seq,
                "type": e.type,
                "event": e.event,
                "vendor_event": e.vendor_event,
                "channel": e.channel,
                "timestamp": format_ts(e.event_time),
                "message_id": e.message_id,
                "campaign_id": e.campaign_id,
            }
            for e in recent
        ],
    }
