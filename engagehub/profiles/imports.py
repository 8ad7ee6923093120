"""Import rows into profiles without the linking loop when nothing can link them.

A CSV row (``consent.batches``) whose identities nobody owns yet — not in
``profile_identities``, not in any other row of its block — creates one new profile with
exactly the identities and traits the per-event loop would give its identify call, so a
block's fresh rows are written with two ``executemany`` calls, straight from the rows. Every
other row goes through the loop as an identify call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from engagehub.consent import batches

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
    new_profile: Callable[[list[Identity], int], dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[Identity, str], list[batches.Row]]:
    """(new profiles, their identities, the rows left for the loop) of one block of rows."""
    per = [row_identities(r[1], r[2]) for r in rows]
    counts: dict[Identity, int] = {}
    for ids in per:
        for identity in ids or ():
            counts[identity] = counts.get(identity, 0) + 1
    candidates = [k for k, ids in enumerate(per) if ids and all(counts[i] == 1 for i in ids)]
    owned = owners({i for k in candidates for i in per[k] or ()})
    profiles: dict[str, dict[str, Any]] = {}
    changed: dict[Identity, str] = {}
    fresh: set[int] = set()
    for k in candidates:
        ids = per[k] or []
        if any(i in owned for i in ids):
            continue
        profile = new_profile(ids, event_time)
        if profile["id"] in profiles:
            continue
        _, row_ids, traits, _changes = rows[k]
        props = batches.identify_props(row_ids, traits)
        props.pop("identifiers", None)  # the loop keeps every property but this one as a trait
        profile["traits"] = props
        profile["trait_times"] = dict.fromkeys(props, event_time)
        profiles[profile["id"]] = profile
        for identity in ids:
            changed[identity] = profile["id"]
        fresh.add(k)
    return profiles, changed, [r for k, r in enumerate(rows) if k not in fresh]
