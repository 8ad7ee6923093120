"""Suppression after erasure: events carrying an erased identifier are acknowledged, not stored.

Keys are salted SHA-256 hashes of the identifier values (the salt is random, per database, in
``meta``), never the values. :func:`screen` runs inside every append transaction, after the
PostgreSQL append lock, so an append either committed before an erasure collected the
person's events or sees the suppression rows; when no one was ever erased it costs one indexed
``LIMIT 1`` read. The one exception is a fresh subscribe by the person's own action (a STOP/START
keyword, a preference page, a link, a request they made): it is stored, and that contact
point's suppression is lifted, so the person can come back by themselves and only so.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

from engagehub.model import StoredEvent
from engagehub.storage.base import Connection

SUPPRESSED = Counter(
    "engagehub_events_suppressed",
    "Events acknowledged but not stored because they carry an erased person's identifier.",
)
_SALT_KEY = "privacy_salt"
CONTACT_KINDS = ("email", "phone")


def salt(conn: Connection) -> str:
    """The database's random salt (created on first use)."""
    found = conn.scalar("SELECT value FROM meta WHERE key = ?", (_SALT_KEY,))
    if found:
        return str(found)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (_SALT_KEY, secrets.token_hex(32)),
    )
    return str(conn.scalar("SELECT value FROM meta WHERE key = ?", (_SALT_KEY,)))


def digest(salt_value: str, value: str) -> str:
    """The suppression key of one identifier value."""
    return hashlib.sha256(f"{salt_value}\x00{value}".encode()).hexdigest()


def add(conn: Connection, erasure_id: str, identities: Iterable[tuple[str, str]], at: int) -> int:
    """Suppress these (kind, value) identities; returns how many keys were new."""
    s = salt(conn)
    rows = sorted({(digest(s, v), erasure_id, k, at) for k, v in identities})
    return conn.executemany(
        "INSERT INTO privacy_suppressions (hash, erasure_id, kind, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
        rows,
    )


def active(conn: Connection) -> bool:
    """Whether anyone was ever erased (the fast path of every append)."""
    return conn.scalar("SELECT 1 FROM privacy_suppressions LIMIT 1") is not None


def matching(conn: Connection, values: Iterable[str]) -> set[str]:
    """The values among these that are suppressed."""
    s = salt(conn)
    by_hash = {digest(s, v): v for v in set(values) if v}
    found: set[str] = set()
    keys = sorted(by_hash)
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        sql = f"SELECT hash FROM privacy_suppressions WHERE hash IN ({', '.join('?' * len(part))})"
        found.update(by_hash[str(h)] for (h,) in conn.execute(sql, part).fetchall())
    return found


def blocked(conn: Connection, contacts: Iterable[str]) -> set[str]:
    """Contact points that were erased and not opted in anew (messaging never sends to them)."""
    contacts = list(contacts)
    if not contacts or not active(conn):
        return set()
    return matching(conn, contacts)


def _values(ev: StoredEvent) -> set[str]:
    """Every identifier value an event carries (the profile processor's reading)."""
    from engagehub.profiles.processor import identities_of

    values = {v for _, v in identities_of(ev, "US")}
    email = ev.properties.get("email")
    if isinstance(email, str):
        values.add(email.strip().lower())
    return values


Rows = list[list[tuple[Any, ...]]]


def screen(conn: Connection, rows: Rows) -> Rows:
    """Log rows to insert (one list per request) without the events of erased people."""
    if not active(conn):
        return rows
    from engagehub.storage.events import from_row

    events = [[from_row((0, *row)) for row in batch] for batch in rows]
    per_event = [[_values(ev) for ev in batch] for batch in events]
    hit = matching(conn, {v for batch in per_event for vs in batch for v in vs})
    if not hit:
        return rows
    out: Rows = []
    dropped = 0
    for batch_rows, batch_events, values in zip(rows, events, per_event, strict=True):
        kept = []
        for row, ev, vs in zip(batch_rows, batch_events, values, strict=True):
            erased = vs & hit
            if not erased:
                kept.append(row)
                continue
            fresh = _own_opt_ins(conn, ev) & erased
            if not fresh:
                dropped += 1
                continue
            lift(conn, fresh)
            kept.append(row)
        out.append(kept)
    if dropped:
        SUPPRESSED.inc(dropped)
    return out


def lift(conn: Connection, values: Iterable[str]) -> None:
    """The person opted in anew on these contact points: stop suppressing them."""
    s = salt(conn)
    conn.executemany(
        "DELETE FROM privacy_suppressions WHERE hash = ?", [(digest(s, v),) for v in values]
    )


def _own_opt_ins(conn: Connection, ev: StoredEvent) -> set[str]:
    """Contact points this event subscribes by the person's own action."""
    from engagehub.consent.changes import changes_of
    from engagehub.consent.store import builtin_source_id
    from engagehub.settings import get_settings

    found: set[str] = set()
    for change in changes_of(ev, builtin_source_id(conn), get_settings().default_region):
        if change.status == "subscribed" and change.own_action:
            found.add(change.contact)
    return found
