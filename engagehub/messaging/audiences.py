"""Audiences: saved filters over subscription state, profile traits and past events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from engagehub.errors import ConflictError, NotFound
from engagehub.messaging.sender import traits_for
from engagehub.messaging.templates import NAME_PATTERN
from engagehub.profiles import members as profile_members
from engagehub.storage import logread
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks
from engagehub.timeutil import now_ms


class Performed(BaseModel):
    """People who did (or did not) perform an event, optionally within the last N days."""

    event: str = Field(min_length=1, max_length=200)
    within_days: float | None = Field(default=None, gt=0)


class AudienceIn(BaseModel):
    """An audience definition."""

    name: str = Field(pattern=NAME_PATTERN)
    channel: Literal["email", "sms"]
    subscribed_only: bool = True
    """Only contact points whose channel is ``subscribed`` (sends re-check it anyway)."""
    traits: dict[str, Any] = Field(default_factory=dict)
    """Trait equality; a list value means any of these values."""
    performed: Performed | None = None
    not_performed: Performed | None = None


def save(conn: Connection, aud: AudienceIn) -> dict[str, Any]:
    """Create an audience (names are unique)."""
    with conn.transaction():
        if conn.scalar("SELECT 1 FROM audiences WHERE name = ?", (aud.name,)):
            raise ConflictError(f"an audience named {aud.name!r} exists", audience=aud.name)
        conn.execute(
            "INSERT INTO audiences (name, definition, created_at) VALUES (?, ?, ?)",
            (aud.name, aud.model_dump_json(), now_ms()),
        )
    return aud.model_dump()


def load(conn: Connection, name: str) -> AudienceIn:
    """A saved audience; 404 naming it."""
    found = conn.scalar("SELECT definition FROM audiences WHERE name = ?", (name,))
    if found is None:
        raise NotFound(f"no audience named {name!r}", audience=name)
    return AudienceIn.model_validate_json(found)


def list_all(conn: Connection) -> list[dict[str, Any]]:
    """Every audience."""
    rows = conn.all("SELECT definition FROM audiences ORDER BY name")
    return [orjson.loads(r["definition"]) for r in rows]


def _performers(conn: Connection, p: Performed) -> set[str]:
    """Contact points that performed the event (directly, or through their profile)."""
    since = None if p.within_days is None else now_ms() - int(p.within_days * 86_400_000)
    rows = logread.performers(conn, p.event, since)
    found = {r["contact"] for r in rows if r["contact"]}
    found.update(contacts_of_users(conn, sorted({r["user_id"] for r in rows if r["user_id"]})))
    return found


def contacts_of_users(conn: Connection, users: Sequence[str]) -> set[str]:
    """Email addresses and phone numbers of the profiles of these user ids."""
    found: set[str] = set()
    for part in chunks(users):
        linked = conn.execute(
            "SELECT p.identities FROM profile_identities a JOIN profiles p ON p.id = a.profile_id "
            f"WHERE a.kind = 'user_id' AND a.value IN ({marks(part)})",
            part,
        ).fetchall()
        found.update(
            v
            for (text,) in linked
            for k, v in profile_members.decode(text)
            if k in ("email", "phone")
        )
    return found


def _matches(traits: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        have = traits.get(key)
        if isinstance(value, list):
            if have not in value:
                return False
        elif have != value:
            return False
    return True


def members(conn: Connection, aud: AudienceIn) -> list[str]:
    """Contact points in the audience now, sorted."""
    if aud.subscribed_only:
        rows = conn.all(
            "SELECT contact FROM subscription_states WHERE channel = ? AND group_name = '' "
            "AND status = 'subscribed'",
            (aud.channel,),
        )
    else:
        kind = "email" if aud.channel == "email" else "phone"
        rows = conn.all("SELECT value AS contact FROM profile_identities WHERE kind = ?", (kind,))
    contacts = sorted({r["contact"] for r in rows})
    if aud.traits:
        traits = traits_for(conn, contacts)
        contacts = [c for c in contacts if _matches(traits.get(c, {}), aud.traits)]
    if aud.performed is not None:
        did = _performers(conn, aud.performed)
        contacts = [c for c in contacts if c in did]
    if aud.not_performed is not None:
        did = _performers(conn, aud.not_performed)
        contacts = [c for c in contacts if c not in did]
    return contacts
