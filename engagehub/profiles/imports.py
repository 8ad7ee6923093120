"""Import rows into profiles without the linking loop when nothing can link them.

A CSV row (an identify call of an import record, ``consent.batches``) whose identities nobody
owns yet — not in ``profile_identities``, not in any other event of the block — creates one
new profile with exactly the identities and traits the per-event loop would give it, so a
block's fresh rows are written with two ``executemany`` calls. Every other row and event goes
through the loop as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engagehub.consent.batches import IMPORTED
from engagehub.model import StoredEvent
from engagehub.storage.base import Connection

Identity = tuple[str, str]


def split_fresh(
    conn: Connection,
    block: Sequence[StoredEvent],
    identities: Callable[[StoredEvent], list[Identity]],
    owners: Callable[[Connection, set[Identity]], dict[Identity, str]],
    new_profile: Callable[[StoredEvent, list[Identity]], dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[Identity, str], list[StoredEvent]]:
    """(new profiles, their identities, the events left for the loop) of one block."""
    per = [identities(ev) for ev in block]
    counts: dict[Identity, int] = {}
    for ids in per:
        for identity in ids:
            counts[identity] = counts.get(identity, 0) + 1
    candidates = [
        k
        for k, ev in enumerate(block)
        if ev.vendor_event == IMPORTED and per[k] and all(counts[i] == 1 for i in per[k])
    ]
    if not candidates:
        return {}, {}, list(block)
    owned = owners(conn, {i for k in candidates for i in per[k]})
    profiles: dict[str, dict[str, Any]] = {}
    changed: dict[Identity, str] = {}
    fresh: set[int] = set()
    for k in candidates:
        ids = per[k]
        if any(i in owned for i in ids):
            continue
        profile = new_profile(block[k], ids)
        if profile["id"] in profiles:
            continue
        profiles[profile["id"]] = profile
        for identity in ids:
            changed[identity] = profile["id"]
        fresh.add(k)
    return profiles, changed, [ev for k, ev in enumerate(block) if k not in fresh]
