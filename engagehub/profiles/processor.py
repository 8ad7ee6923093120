"""Identity resolution: every event links the identities it carries into one profile.

Identities: ``user_id``, ``anonymous_id``, ``email`` (normalized), ``phone`` (E.164),
``braze_id``, ``push_token`` (push consent's contact points), alias ``previous_id`` and custom
``identifiers`` (CSV ``id:<kind>`` columns).
A profile's id is ``p_`` + a hash of the identity that created it; when an event links two
profiles the one with the smaller id survives and the other points to it (``merged_into``), so
lookups by an old id still work. Two profiles that each carry a different ``user_id`` are never
merged (recorded in ``profile_conflicts``): a shared email must not join two customers.
Traits from identify calls are kept per key, the newest event time winning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from engagehub.consent import batches
from engagehub.contacts import ContactError, normalize_phone
from engagehub.model import StoredEvent
from engagehub.processing.window import Window
from engagehub.profiles import imports
from engagehub.profiles import members as members_of
from engagehub.storage import bulk
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import CHUNK, chunks, where_in

Identity = tuple[str, str]
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def identities_of(ev: StoredEvent, region: str) -> list[Identity]:
    """The identities an event carries (normalized)."""
    props = ev.properties
    found: list[Identity] = []
    if ev.user_id:
        found.append(("user_id", ev.user_id))
    if ev.anonymous_id:
        found.append(("anonymous_id", ev.anonymous_id))
    contact = ev.contact
    if contact:
        found.append(("email", contact) if "@" in contact else ("phone", contact))
    phone = props.get("phone") if ev.type == "identify" else None
    if isinstance(phone, str) and phone and not (contact and contact.startswith("+")):
        if _E164.fullmatch(phone):  # already in normal form (CSV rows, our own events)
            found.append(("phone", phone))
        else:
            try:
                found.append(("phone", normalize_phone(phone, region)))
            except ContactError:
                pass
    braze = props.get("braze_id")
    if isinstance(braze, str) and braze:
        found.append(("braze_id", braze))
    token = props.get("push_token")  # Braze token changes, MoEngage push_id: push consent keys
    if isinstance(token, str) and token:
        found.append(("push_token", token))
    if ev.type == "alias" and props.get("previous_id"):
        found.append(("anonymous_id", str(props["previous_id"])))
    custom = props.get("identifiers")
    if isinstance(custom, dict):
        found.extend((str(k), str(v)) for k, v in custom.items() if v not in (None, ""))
    return found if len(found) < 2 else list(dict.fromkeys(found))


def profile_id_for(identity: Identity) -> str:
    """Stable id of a profile created by this identity."""
    return "p_" + hashlib.sha1(f"{identity[0]}:{identity[1]}".encode()).hexdigest()[:16]  # noqa: S324


# Events whose identities need the payload (traits, phone, braze_id, custom identifiers): the
# rest are folded in SQL to one row per distinct (user_id, anonymous_id, contact).
_NEEDS_PAYLOAD = (
    "type IN ('identify', 'alias') OR properties LIKE '%\"braze_id\"%' "
    "OR properties LIKE '%\"push_token\"%' "
    "OR properties LIKE '%\"identifiers\"%'"
)


@dataclass(slots=True)
class _Item:
    """Events with the same identities (or one event that needs its payload)."""

    seq: int
    first: int
    last: int
    ids: list[Identity]
    event: StoredEvent | None = None
    """The full event when it is an identify call (its traits)."""


PROFILE_COLUMNS: tuple[str, ...] = ("id", "merged_into", "traits", "trait_times", "identities")
PROFILE_COLUMNS += ("first_seen", "last_seen", "updated_at")
_PROFILE_CONFLICT = "ON CONFLICT (id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in PROFILE_COLUMNS[1:]
)
UPSERT_PROFILES = bulk.insert_sql("profiles", PROFILE_COLUMNS, _PROFILE_CONFLICT)
"""A profile row, its identities listed (``profiles.members``) in the same statement."""
IDENTITY_COLUMNS = ("kind", "value", "profile_id", "first_seen")
_IDENTITY_CONFLICT = "ON CONFLICT (kind, value) DO UPDATE SET profile_id = excluded.profile_id"
UPSERT_IDENTITIES = bulk.insert_sql("profile_identities", IDENTITY_COLUMNS, _IDENTITY_CONFLICT)

# A CSV import's records (``consent.batches``): their rows are identify calls.
_RECORDS = (
    f"event = '{batches.IMPORTED}' "
    "AND source_id IN (SELECT id FROM sources WHERE kind = 'engagehub')"
)


class ProfileProcessor:
    """Derived tables ``profiles`` and ``profile_identities``."""

    name = "profiles"
    where: str | None = "user_id IS NOT NULL OR anonymous_id IS NOT NULL OR contact IS NOT NULL"

    def __init__(self, region: str = "US") -> None:
        self.region = region

    def apply_window(self, window: Window) -> None:
        """Link the identities of the window: one SQL group per identity set, full events only
        where the payload carries identities or traits; rows are read and written in bulk."""
        where = self.where
        full = window.events(f"({where}) AND ({_NEEDS_PAYLOAD})")
        items = [
            _Item(ev.seq, ev.event_time, ev.event_time, identities_of(ev, self.region), ev)
            for ev in full
        ]
        cond, params = window.bounds()
        grouped = window.conn.execute(
            "SELECT MIN(seq), MIN(event_time), MAX(event_time), MAX(received_at), user_id, "
            f"anonymous_id, contact FROM {window.table()} WHERE {cond} AND ({where}) "
            f"AND NOT ({_NEEDS_PAYLOAD}) GROUP BY user_id, anonymous_id, contact",
            params,
        ).fetchall()
        received = max((ev.received_at for ev in full), default=0)
        for seq, first, last, rec, user_id, anonymous_id, contact in grouped:
            ids: list[Identity] = []
            if user_id:
                ids.append(("user_id", user_id))
            if anonymous_id:
                ids.append(("anonymous_id", anonymous_id))
            if contact:
                ids.append(("email", contact) if "@" in contact else ("phone", contact))
            items.append(_Item(int(seq), int(first), int(last), ids))
            received = max(received, int(rec))
        items.sort(key=lambda item: item.seq)
        records = window.events(_RECORDS)
        for record in records:  # an import's rows, in log order with the other events
            before = [item for item in items if item.seq < record.seq]
            items = items[len(before) :]
            self._link(window.conn, before, received)
            self._import(window.conn, record)
        self._link(window.conn, items, received)

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Link identities of these events in order (the per-event path, for tests and tools)."""
        items: list[_Item] = []
        received = max((ev.received_at for ev in events), default=0)
        for ev in events:
            if ev.event == batches.IMPORTED and ev.vendor_event == batches.IMPORTED:
                self._link(conn, items, received)
                items = []
                self._import(conn, ev)
            else:
                items.append(
                    _Item(ev.seq, ev.event_time, ev.event_time, identities_of(ev, self.region), ev)
                )
        self._link(conn, items, received)

    fast_imports = True
    """Whether import rows nothing can link become profiles without the loop (``imports``)."""

    def _import(self, conn: Connection, record: StoredEvent) -> None:
        """A CSV import record's rows as identify calls, a few thousand at a time; rows whose
        identities nobody has are written as new profiles directly (``profiles.imports``)."""
        rows = batches.load(conn, record)[1]
        for start in range(0, len(rows), 5_000):
            rest = rows[start : start + 5_000]
            if self.fast_imports:
                profiles, identities, rest = imports.split_rows(
                    rest,
                    record.event_time,
                    lambda wanted: self._owners(conn, wanted),
                    profile_id_for,
                )
                t, now = record.event_time, record.received_at
                conn.executemany(
                    UPSERT_PROFILES,
                    [(p, None, tr, times, ids, t, t, now) for p, tr, times, ids in profiles],
                )
                conn.executemany(UPSERT_IDENTITIES, [(*i, now) for i in identities])
            items = []
            for row in rest:
                ev = batches.identify_event(record, row)
                items.append(
                    _Item(ev.seq, ev.event_time, ev.event_time, identities_of(ev, self.region), ev)
                )
            self._link(conn, items, record.received_at)

    def _link(self, conn: Connection, items: list[_Item], received: int) -> None:
        wanted = {i for item in items for i in item.ids}
        if not wanted:
            return
        owner = self._owners(conn, wanted)
        profiles = self._profiles(conn, set(owner.values()))
        members = {pid: set(p["identities"]) for pid, p in profiles.items()}
        changed_ids: dict[Identity, str] = {}
        conflicts: list[tuple[int, str, str, str]] = []
        for item in items:
            ids = item.ids
            if not ids:
                continue
            pids = sorted({self._root(profiles, owner[i]) for i in ids if i in owner})
            if not pids:
                pid = profile_id_for(min(ids))
                profiles.setdefault(pid, self._new(pid, item.first))
                members.setdefault(pid, set())
                pids = [pid]
            target = pids[0]
            for other in pids[1:]:
                if self._conflict(members, target, other):
                    conflicts.append((item.seq, target, other, "different user_id"))
                    continue
                self._merge(profiles, members, owner, changed_ids, target, other)
            own_users: set[str] | None = None  # built only when a new identity needs it
            for identity in ids:
                if identity in owner:
                    continue
                if own_users is None:
                    own_users = {v for k, v in members[target] if k == "user_id"}
                if identity[0] == "user_id" and own_users and identity[1] not in own_users:
                    conflicts.append((item.seq, target, identity[1], "second user_id"))
                    continue
                owner[identity] = changed_ids[identity] = target
                members[target].add(identity)
                profiles[target]["dirty"] = True  # its row lists its identities
            # A profile row is rewritten only when it changes: a bulk import's many events per
            # person (changes, companions) at one time would otherwise rewrite it each window.
            profile = profiles[target]
            if item.first < profile["first_seen"]:
                profile["first_seen"] = item.first
                profile["dirty"] = True
            if item.last > profile["last_seen"]:
                profile["last_seen"] = item.last
                profile["dirty"] = True
            ev = item.event
            if ev is not None and ev.type == "identify" and self._traits(profile, ev):
                profile["dirty"] = True
        self._write(conn, profiles, members, changed_ids, conflicts, received)

    @staticmethod
    def _root(profiles: dict[str, dict[str, Any]], pid: str) -> str:
        while profiles.get(pid, {}).get("merged_into"):
            pid = profiles[pid]["merged_into"]
        return pid

    @staticmethod
    def _conflict(members: dict[str, set[Identity]], a: str, b: str) -> bool:
        users_a = {v for k, v in members.get(a, set()) if k == "user_id"}
        users_b = {v for k, v in members.get(b, set()) if k == "user_id"}
        return bool(users_a and users_b and users_a != users_b)

    @staticmethod
    def _merge(
        profiles: dict[str, dict[str, Any]],
        members: dict[str, set[Identity]],
        owner: dict[Identity, str],
        changed: dict[Identity, str],
        target: str,
        other: str,
    ) -> None:
        for identity in members.pop(other, set()):
            owner[identity] = changed[identity] = target
            members[target].add(identity)
        winner, loser = profiles[target], profiles[other]
        for key, when in loser["trait_times"].items():
            if when >= winner["trait_times"].get(key, -1):
                winner["traits"][key] = loser["traits"].get(key)
                winner["trait_times"][key] = when
        winner["first_seen"] = min(winner["first_seen"], loser["first_seen"])
        winner["last_seen"] = max(winner["last_seen"], loser["last_seen"])
        loser["merged_into"] = target
        loser["dirty"] = winner["dirty"] = True

    @staticmethod
    def _traits(profile: dict[str, Any], ev: StoredEvent) -> bool:
        """Apply an identify call's traits (newest event time wins); whether any changed."""
        traits, times = profile["traits"], profile["trait_times"]
        changed = False
        for key, value in ev.properties.items():
            if key == "identifiers":
                continue
            when = times.get(key, -1)
            if ev.event_time >= when and (
                when != ev.event_time or key not in traits or traits[key] != value
            ):
                traits[key] = value
                times[key] = ev.event_time
                changed = True
        return changed

    @staticmethod
    def _new(pid: str, when: int) -> dict[str, Any]:
        return {
            "id": pid,
            "merged_into": None,
            "traits": {},
            "trait_times": {},
            "identities": [],
            "first_seen": when,
            "last_seen": when,
            "dirty": True,
        }

    @staticmethod
    def _owners(conn: Connection, wanted: set[Identity]) -> dict[Identity, str]:
        owner: dict[Identity, str] = {}
        values = sorted({v for _, v in wanted})
        for part in chunks(values):
            rows = conn.execute(
                "SELECT kind, value, profile_id FROM profile_identities WHERE "
                f"{where_in('value', part)}",
                part,
            ).fetchall()
            for kind, value, pid in rows:
                if (kind, value) in wanted:
                    owner[(kind, value)] = pid
        return owner

    @staticmethod
    def _profiles(conn: Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        pending = set(ids)
        while pending:
            part = sorted(pending)[:CHUNK]
            pending -= set(part)
            for row in conn.all(
                "SELECT id, merged_into, traits, trait_times, identities, first_seen, last_seen "
                f"FROM profiles WHERE {where_in('id', part)}",
                part,
            ):
                row["traits"] = orjson.loads(row["traits"])
                row["trait_times"] = orjson.loads(row["trait_times"])
                row["identities"] = members_of.decode(row["identities"])
                row["dirty"] = False
                found[row["id"]] = row
                if row["merged_into"] and row["merged_into"] not in found:
                    pending.add(row["merged_into"])
        return found

    @staticmethod
    def _write(
        conn: Connection,
        profiles: dict[str, dict[str, Any]],
        members: dict[str, set[Identity]],
        changed: dict[Identity, str],
        conflicts: list[tuple[int, str, str, str]],
        now: int,
    ) -> None:
        rows = [
            (
                p["id"],
                p["merged_into"],
                orjson.dumps(p["traits"], default=str).decode(),
                orjson.dumps(p["trait_times"]).decode(),
                members_of.encode(members.get(pid, ())),
                p["first_seen"],
                p["last_seen"],
                now,
            )
            for pid, p in sorted(profiles.items())  # key order: B-tree pages written once
            if p["dirty"]
        ]
        bulk.insert(conn, "profiles", PROFILE_COLUMNS, rows, _PROFILE_CONFLICT)
        links = [(k, v, pid, now) for (k, v), pid in sorted(changed.items())]
        bulk.insert(conn, "profile_identities", IDENTITY_COLUMNS, links, _IDENTITY_CONFLICT)
        kept = ("seq", "profile_id", "other_profile_id", "reason")
        bulk.insert(conn, "profile_conflicts", kept, conflicts, "ON CONFLICT DO NOTHING")

    def reset(self, conn: Connection) -> None:
        """Forget every profile (rebuilt by ``engagehub reprocess profiles``)."""
        for table in ("profiles", "profile_identities", "profile_conflicts"):
            conn.execute(f"DELETE FROM {table}")
