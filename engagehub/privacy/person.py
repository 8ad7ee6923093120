"""Who a key names and what of theirs the database holds: profiles, identities, events, messages.

A key is any identifier (user id, anonymous id, email, phone, vendor id, profile id); the whole
profile it resolves to counts, with the profiles merged into it. Events are the person's when
they carry one of the identities (read the way the profile processor reads them) or belong to
one of the person's messages (a provider event with only a message id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engagehub.contacts import ContactError, normalize_email, normalize_phone
from engagehub.errors import NotFound, PayloadError
from engagehub.model import StoredEvent
from engagehub.profiles import members
from engagehub.profiles import store as profile_store
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in

_COLUMNS = ("user_id", "anonymous_id", "contact")


@dataclass(slots=True)
class Person:
    """Everything that identifies one person."""

    profiles: list[str] = field(default_factory=list)
    identities: list[tuple[str, str]] = field(default_factory=list)

    @property
    def values(self) -> set[str]:
        """Every identifier value."""
        return {v for _, v in self.identities}

    def of(self, *kinds: str) -> list[str]:
        """Values of these kinds."""
        return sorted({v for k, v in self.identities if k in kinds})

    @property
    def contacts(self) -> list[str]:
        """Email addresses and phone numbers."""
        return self.of("email", "phone")


def key_forms(key: str, region: str) -> list[str]:
    """The key as given and in its normal email and phone forms."""
    forms = [key.strip()]
    for normalize in (normalize_email, lambda v: normalize_phone(v, region)):
        try:
            forms.append(normalize(key))
        except ContactError:
            pass
    return list(dict.fromkeys(f for f in forms if f))


def resolve(conn: Connection, key: str, region: str) -> Person:
    """The person ``key`` names; a key no profile knows is still a person of that one value."""
    if not key.strip():
        raise PayloadError("the key is empty: give an identifier of the person", field="key")
    try:
        root = profile_store.find(conn, key, region)
    except NotFound:
        forms = key_forms(key, region)
        kind = "email" if "@" in forms[-1] else "phone" if forms[-1].startswith("+") else "key"
        return Person([], [(kind, forms[-1])] + [("key", f) for f in forms[:-1]])
    profiles = {root}
    frontier = [root]
    while frontier:  # profiles merged into this one (and into those), any depth
        found = []
        for part in chunks(frontier):
            found += [
                str(r[0])
                for r in conn.execute(
                    f"SELECT id FROM profiles WHERE {where_in('merged_into', part)}", part
                ).fetchall()
            ]
        frontier = [p for p in found if p not in profiles]
        profiles.update(frontier)
    ordered = sorted(profiles)
    return Person(ordered, members.listed(conn, ordered))


def message_ids(conn: Connection, person: Person) -> set[str]:
    """The person's messages: lifecycles by user id or contact, and sends to their contacts."""
    found: set[str] = set()
    queries = (
        ("SELECT message_id FROM analytics_messages WHERE {}", "user_id", person.of("user_id")),
        ("SELECT message_id FROM analytics_messages WHERE {}", "contact", person.contacts),
        ("SELECT id FROM message_sends WHERE {}", "contact", person.contacts),
    )
    for sql, column, values in queries:
        for part in chunks(values):
            found.update(str(r[0]) for r in conn.execute(sql.format(where_in(column, part)), part))
    return found


def events(conn: Connection, person: Person, messages: set[str]) -> list[StoredEvent]:
    """Every event of the person in the log, in log order (index plus the unindexed tail)."""
    from engagehub.storage.event_index import KEYED_COLUMNS, indexed_upto, key_hash, positions_sql

    keys = [
        key_hash(KEYED_COLUMNS[column], value)
        for value in person.values
        for column in ("user_id", "anonymous_id", "contact")
    ] + [key_hash(KEYED_COLUMNS["message_id"], m) for m in messages]
    seqs: set[int] = set()
    for part in chunks(sorted(set(keys))):
        seqs.update(int(r[0]) for r in conn.execute(positions_sql(conn, where_in("k", part)), part))
    indexed = indexed_upto(conn)  # the slowest shard, when log_index is sharded
    values = sorted(person.values)
    clauses: list[str] = []
    params: list[Any] = [indexed]
    if values:
        clauses += [where_in(column, values) for column in _COLUMNS]
        params += values * len(_COLUMNS)
    if messages:
        clauses.append(where_in("message_id", sorted(messages)))
        params += sorted(messages)
    if clauses:
        sql = f"SELECT seq FROM events WHERE seq > ? AND ({' OR '.join(clauses)})"
        seqs.update(int(r[0]) for r in conn.execute(sql, params))
    out: list[StoredEvent] = []
    mine = person.values
    for part in chunks(sorted(seqs)):
        rows = conn.execute(
            f"SELECT {log.COLUMNS} FROM events WHERE {where_in('seq', part)} ORDER BY seq", part
        ).fetchall()
        for row in rows:
            ev = log.from_row(row)
            carried = {ev.user_id, ev.anonymous_id, ev.contact}
            if carried & mine or (ev.message_id and ev.message_id in messages):
                out.append(ev)
    return out
