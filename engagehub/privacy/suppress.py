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
from engagehub.storage import events as log
from engagehub.storage.base import Connection

SUPPRESSED = Counter(
    "engagehub_events_suppressed",
    "Events acknowledged but not stored because they carry an erased person's identifier.",
)
IMPORT_ROWS_SUPPRESSED = Counter(
    "engagehub_import_rows_suppressed",
    "CSV import rows not stored because they name an erased person's identifier.",
)
_IMPORTED = "Subscriptions Imported"  # consent.batches.IMPORTED (a record's rows are aside)
_SALT_KEY = "privacy_salt"
_VERSION_KEY = "privacy_keys_version"
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
    """The suppression key of one identifier value: SHA-256 of salt, NUL, value."""
    base = _BASES.get(salt_value)
    if base is None:
        if len(_BASES) >= _CACHE_MAX:
            _BASES.clear()
        base = _BASES[salt_value] = hashlib.sha256(salt_value.encode() + b"\x00")
    h = base.copy()
    h.update(value.encode())
    return h.hexdigest()


def add(conn: Connection, erasure_id: str, identities: Iterable[tuple[str, str]], at: int) -> int:
    """Suppress these (kind, value) identities; returns how many keys were new."""
    s = salt(conn)
    rows = sorted({(digest(s, v), erasure_id, k, at) for k, v in identities})
    added = conn.executemany(
        "INSERT INTO privacy_suppressions (hash, erasure_id, kind, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
        rows,
    )
    _bump(conn)
    return added


def _bump(conn: Connection) -> None:
    """A new version of the key set: every process reloads it at its next append."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_VERSION_KEY, secrets.token_hex(8)),
    )


def _keys(conn: Connection) -> tuple[str, frozenset[str]] | None:
    """(salt, every suppression key), or None when no one was ever erased: one indexed read,
    plus a reload of the keys only when their version changed (kept per database, by salt)."""
    found = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (_SALT_KEY, _VERSION_KEY)
        ).fetchall()
    )
    s, version = found.get(_SALT_KEY), found.get(_VERSION_KEY)
    if not s or not version:
        return None
    hit = _KEYS.get(s)
    if hit is None or hit[0] != version:
        keys = frozenset(str(h) for (h,) in conn.execute("SELECT hash FROM privacy_suppressions"))
        if len(_KEYS) >= _CACHE_MAX:
            _KEYS.clear()
        hit = _KEYS[s] = (str(version), keys)
    return str(s), hit[1]


_KEYS: dict[str, tuple[str, frozenset[str]]] = {}
_BASES: dict[str, Any] = {}
_CACHE_MAX = 16


def active(conn: Connection) -> bool:
    """Whether anyone is suppressed (the fast path of every append)."""
    state = _keys(conn)
    return state is not None and bool(state[1])


def matching(conn: Connection, values: Iterable[str]) -> set[str]:
    """The values among these that are suppressed."""
    state = _keys(conn)
    if state is None or not state[1]:
        return set()
    s, keys = state
    return {v for v in set(values) if v and digest(s, v) in keys}


def blocked(conn: Connection, contacts: Iterable[str]) -> set[str]:
    """Contact points that were erased and not opted in anew (messaging never sends to them)."""
    return matching(conn, contacts)


def _values(ev: StoredEvent) -> set[str]:
    """Every identifier value an event carries (the profile processor's reading)."""
    from engagehub.profiles.processor import identities_of

    values = {v for _, v in identities_of(ev, "US")}
    email = ev.properties.get("email")
    if isinstance(email, str):
        values.add(email.strip().lower())
    return values


Rows = log.Rows
# Properties that may carry an identifier (else the user, anonymous id and contact columns say
# it all and the JSON is not decoded).
_IDENTIFYING = ('"phone"', '"braze_id"', '"previous_id"', '"identifiers"', '"email"')


def _row_values(row: tuple[Any, ...]) -> set[str]:
    values = {v for v in (row[7], row[8], row[9]) if v}
    props: str = row[14]
    if any(k in props for k in _IDENTIFYING):
        values |= _values(log.from_row((0, *row)))
    return values


def screen(conn: Connection, rows: Rows) -> Rows:
    """Log rows to insert (one list per request) without the events of erased people."""
    state = _keys(conn)
    if state is None or not state[1]:
        return rows
    s, keys = state
    seen: dict[str, bool] = {}  # a person's identifiers repeat across their events

    def erased_in(row: tuple[Any, ...]) -> set[str]:
        out = set()
        for v in _row_values(row):
            hit = seen.get(v)
            if hit is None:
                hit = seen[v] = digest(s, v) in keys
            if hit:
                out.add(v)
        return out

    def erased_of(values: set[str]) -> set[str]:
        return {v for v in values if digest(s, v) in keys}

    out: Rows = []
    dropped = 0
    for batch_rows in rows:
        kept = []
        for row in batch_rows:
            if row[5] == _IMPORTED:  # a CSV chunk: its rows are aside, in import_batches
                from engagehub.consent import batches

                IMPORT_ROWS_SUPPRESSED.inc(batches.screen(conn, row[0], erased_of))
                kept.append(row)
                continue
            erased = erased_in(row)
            if not erased:
                kept.append(row)
                continue
            fresh = _own_opt_ins(conn, log.from_row((0, *row))) & erased
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
    _bump(conn)


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


log.add_screen(screen)  # every append screens erased people out (storage cannot import privacy)
