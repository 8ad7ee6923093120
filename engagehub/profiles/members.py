"""A profile's identities, listed in its own row (``profiles.identities``, migration 0214).

``profile_identities`` answers "whose is this identity" (keyed ``(kind, value)``, indexed by
value); the other direction — "which identities has this profile" — is the JSON list of
``[kind, value]`` pairs in the profile's row, written by the same statements that write the
row. No B-tree is keyed by profile id per identity: profile ids are hashes, so such an index
took each new identity at a random place (the largest single cost of a 1M-row CSV import).
The list is sorted (code-point order), and a merged profile's list is empty: its identities
moved to the profile it was merged into, as their ``profile_identities`` rows did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in

Identity = tuple[str, str]


def encode(identities: Iterable[Identity]) -> str:
    """The column's text for a set of identities: sorted ``[kind, value]`` pairs."""
    return orjson.dumps(sorted(identities)).decode()


def decode(text: str | bytes | None) -> list[Identity]:
    """The identities a column's text lists."""
    return [(str(k), str(v)) for k, v in orjson.loads(text or "[]")]


def of(conn: Connection, profiles: Sequence[str]) -> dict[str, list[Identity]]:
    """The identities of each of these profiles that exists (sorted), by profile id."""
    found: dict[str, list[Identity]] = {}
    for part in chunks(sorted(set(profiles))):
        for pid, text in conn.execute(
            f"SELECT id, identities FROM profiles WHERE {where_in('id', part)}", part
        ).fetchall():
            found[str(pid)] = sorted(decode(text))  # a migrated list's order is the backend's
    return found


def listed(conn: Connection, profiles: Sequence[str]) -> list[Identity]:
    """Every identity of these profiles, sorted by kind and value."""
    return sorted({i for ids in of(conn, profiles).values() for i in ids})
