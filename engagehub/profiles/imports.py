"""Import rows into profiles without the linking loop when nothing can link them.

A CSV row (``consent.batches``) whose identities nobody owns yet — not in
``profile_identities``, not in any other row of its block — creates one new profile with
exactly the identities and traits the per-event loop would give its identify call, so a
block's fresh rows are written with two ``executemany`` calls, straight from the rows (no
profile dicts: JSON texts and sorted tuples). Every other row goes through the loop as an
identify call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from engagehub.consent import batches
from engagehub.profiles import members

Identity = tuple[str, str]
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def row_identities(ids: dict[str, str], traits: dict[str, Any]) -> list[Identity] | None:
    """``profiles.processor.identities_of`` of a row's identify call, without building it;
    None when the row needs the general path (a phone not in E.164)."""
    found: list[Identity] = []
    user, anonymous = ids.get("user_id"), ids.get("anonymous_id")
    email, phone = ids.get("email"), ids.get("phone")
    if user:
        found.append(("user_id", user))
    if anonymous:
        found.append(("anonymous_id", anonymous))
    contact = email or phone
    if contact:
        found.append(("email", contact) if "@" in contact else ("phone", contact))
    if phone and not (contact and contact.startswith("+")):
        if not _E164.fullmatch(phone):
            return None
        found.append(("phone", phone))
    braze = traits.get("braze_id")
    if isinstance(braze, str) and braze:
        found.append(("braze_id", braze))
    found.extend((k[3:], v) for k, v in ids.items() if k.startswith("id:") and v != "")
    return found if len(found) < 2 else list(dict.fromkeys(found))


def split_rows(
    rows: Sequence[batches.Row],
    event_time: int,
    owners: Callable[[set[Identity]], dict[Identity, str]],
    profile_id: Callable[[Identity], str],
) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str]], list[batches.Row]]:
    """(new profiles, their identities, the rows left for the loop) of one block of rows:
    profiles as ``(id, traits JSON, trait_times JSON, identities JSON)`` (``members``),
    identities as ``(kind, value, profile id)``, both sorted by key (B-tree pages written in
    order). A fresh row's profile is the one the loop would make: created by its smallest
    identity, its identify call's properties but ``identifiers`` as traits, all at the
    record's time."""
    per = [row_identities(r[1], r[2]) for r in rows]
    seen: set[Identity] = set()
    repeated: set[Identity] = set()
    for ids in per:
        for identity in ids or ():
            if identity in seen:
                repeated.add(identity)
            else:
                seen.add(identity)
    candidates = [k for k, ids in enumerate(per) if ids and repeated.isdisjoint(ids)]
    owned = owners({i for k in candidates for i in per[k] or ()}).keys()
    profiles: dict[str, tuple[str, str, str, str]] = {}
    identities: list[tuple[str, str, str]] = []
    fresh: set[int] = set()
    times: dict[tuple[str, ...], str] = {}  # trait_times JSON per key set: rows share a header
    for k in candidates:
        ids = per[k] or []
        if not owned.isdisjoint(ids):
            continue
        pid = profile_id(min(ids))
        if pid in profiles:
            continue
        _, row_ids, traits, _changes = rows[k]
        props = {key: v for key, v in traits.items() if key != "identifiers"}
        for name in ("email", "phone"):  # ``batches.identify_props`` without ``identifiers``
            if name in row_ids:
                props[name] = row_ids[name]
        keys = tuple(props)
        stamped = times.get(keys)
        if stamped is None:
            stamped = times[keys] = orjson.dumps(dict.fromkeys(keys, event_time)).decode()
        listed = members.encode(ids)
        profiles[pid] = (pid, orjson.dumps(props, default=str).decode(), stamped, listed)
        identities.extend((kind, value, pid) for kind, value in ids)
        fresh.add(k)
    rest = [r for k, r in enumerate(rows) if k not in fresh] if fresh else list(rows)
    return [profiles[p] for p in sorted(profiles)], sorted(identities), rest
