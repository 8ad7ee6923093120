"""Access and portability (GDPR Art. 15/20): one JSON document with all we hold on a person.

The document is written as a stream: the header (profile, identities, subscriptions with their
full audit history, messages sent with their lifecycles) first, then every event of the log,
read and encoded 500 at a time, so a long history never sits in memory at once. For large
histories the same document comes as a zip (:func:`zipped`: one deflated member
``person-export.json``, written as it streams, ZIP64 so no size limit applies).
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from engagehub.consent import store as consent
from engagehub.eventjson import event_json
from engagehub.privacy import person as people
from engagehub.profiles import store as profile_store
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in
from engagehub.timeutil import format_ts, now_ms

FORMAT = "engagehub.person-export/1"
MEMBER = "person-export.json"
"""The one file of a zipped export."""


def _messages(conn: Connection, p: people.Person, ids: set[str]) -> list[dict[str, Any]]:
    sends: dict[str, dict[str, Any]] = {}
    for part in chunks(p.contacts):
        for r in conn.all(
            "SELECT id, template, channel, contact, broadcast_id, journey, transactional, "
            "state, provider, provider_message_id, error, created_at, updated_at "
            f"FROM message_sends WHERE {where_in('contact', part)} ORDER BY created_at, id",
            part,
        ):
            r["created_at"], r["updated_at"] = (
                format_ts(r["created_at"]),
                format_ts(r["updated_at"]),
            )
            r["transactional"] = bool(r["transactional"])
            sends[r["id"]] = {"message_id": r.pop("id"), "send": r}
    lifecycles: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(ids)):
        for r in conn.all(
            "SELECT message_id, campaign_id, campaign_name, channel, variation, step, user_id, "
            f"contact, status, converted_at FROM analytics_messages WHERE "
            f"{where_in('message_id', part)}",
            part,
        ):
            lifecycles[r["message_id"]] = r
    out = []
    for mid in sorted(set(sends) | set(lifecycles)):
        entry = sends.get(mid, {"message_id": mid, "send": None})
        entry["lifecycle"] = lifecycles.get(mid)
        out.append(entry)
    return out


def _profile(conn: Connection, pid: str) -> dict[str, Any]:
    row = conn.one("SELECT id, traits, first_seen, last_seen FROM profiles WHERE id = ?", (pid,))
    assert row is not None
    return {
        "id": row["id"],
        "traits": orjson.loads(row["traits"]),
        "first_seen": format_ts(row["first_seen"]),
        "last_seen": format_ts(row["last_seen"]),
    }


def document(conn: Connection, key: str, region: str) -> Iterator[bytes]:
    """The export of the person ``key`` names, as chunks of one JSON document."""
    p = people.resolve(conn, key, region)
    if not p.profiles:
        profile_store.find(conn, key, region)  # raises the usual 404 naming the key
    messages = people.message_ids(conn, p)
    header = {
        "format": FORMAT,
        "exported_at": format_ts(now_ms()),
        "key": key,
        "profile": _profile(conn, p.profiles[0]),
        "merged_profiles": p.profiles[1:],
        "identities": [{"kind": k, "value": v} for k, v in p.identities],
        "subscriptions": consent.states_for(conn, p.contacts),
        "consent_history": consent.history(conn, p.contacts, 1_000_000),
        "messages": _messages(conn, p, messages),
    }
    head = orjson.dumps(header)
    yield head[:-1] + b',"events":['
    names = source_store.names(conn)
    seqs = [e.seq for e in people.events(conn, p, messages)]
    first = True
    count = 0
    for part in chunks(seqs):
        rows = conn.execute(
            f"SELECT {log.COLUMNS} FROM events WHERE {where_in('seq', part)} ORDER BY seq", part
        ).fetchall()
        encoded = [orjson.dumps(event_json(log.from_row(r), names, raw=True)) for r in rows]
        count += len(encoded)
        if encoded:
            yield (b"" if first else b",") + b",".join(encoded)
            first = False
    yield b'],"event_count":' + str(count).encode() + b"}"


def document_from(db: Database, key: str, region: str) -> Iterator[bytes]:
    """:func:`document` over a pooled reader held for the stream's life."""
    with db.reader() as conn:
        yield from document(conn, key, region)


def prepend(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    """``first``, then the rest of the stream."""
    yield first
    yield from rest


class _Chunks(io.RawIOBase):
    """A write-only stream that hands out what was written (zipfile writes into it)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def zipped(parts: Iterable[bytes]) -> Iterator[bytes]:
    """The document's chunks as a streamed zip archive (data descriptors: no seeking back)."""
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(MEMBER, date_time=time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            for part in parts:
                member.write(part)
                chunk = sink.take()
                if chunk:
                    yield chunk
    yield sink.take()
