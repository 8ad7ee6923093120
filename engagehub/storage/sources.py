"""Sources: who may send events. Write keys are stored as SHA-256 hashes, never in clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from engagehub import safejson
from engagehub.errors import ConflictError, NotFound
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

_COLUMNS = "id, name, kind, write_key_hint, secret, config, created_at, disabled"


def hash_key(key: str) -> str:
    """SHA-256 of a write key: what we store and look up by."""
    return hashlib.sha256(key.encode()).hexdigest()


# Kinds whose secret is a bearer token we only compare: kept as a SHA-256 digest, never in clear.
# (SendGrid's is a public key; Twilio's auth token must stay readable to compute HMACs.)
HASHED_SECRET_KINDS = frozenset({"braze", "moengage"})
HASHED_PREFIX = "sha256:"


def stored_secret(kind: str, secret: str | None) -> str | None:
    """What to keep for a source's secret: a digest where the secret is only ever compared."""
    if secret and kind in HASHED_SECRET_KINDS and not secret.startswith(HASHED_PREFIX):
        return HASHED_PREFIX + hash_key(secret)
    return secret


def new_write_key() -> str:
    """A fresh write key: 32 URL-safe random characters."""
    return secrets.token_urlsafe(24)


@dataclass(slots=True)
class Source:
    """A configured sender; ``secret`` is the vendor signing secret where the vendor has one."""

    id: int
    name: str
    kind: str
    write_key_hint: str
    secret: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0
    disabled: bool = False


def _from_row(row: dict[str, Any]) -> Source:
    return Source(
        id=int(row["id"]),
        name=row["name"],
        kind=row["kind"],
        write_key_hint=row["write_key_hint"],
        secret=row["secret"],
        config=orjson.loads(row["config"]) if row["config"] else {},
        created_at=int(row["created_at"]),
        disabled=bool(row["disabled"]),
    )


def create(
    conn: Connection,
    name: str,
    kind: str,
    write_key: str | None = None,
    secret: str | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[Source, str]:
    """Create a source; returns it and its write key (generated when not given)."""
    key = write_key or new_write_key()
    with conn.transaction():
        if conn.scalar("SELECT 1 FROM sources WHERE name = ?", (name,)):
            raise ConflictError(f"a source named {name!r} already exists", field="name", value=name)
        if conn.scalar("SELECT 1 FROM sources WHERE write_key_hash = ?", (hash_key(key),)):
            raise ConflictError(
                "that write key is already used by another source", field="write_key"
            )
        conn.execute(
            "INSERT INTO sources (name, kind, write_key_hash, write_key_hint, secret, config, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                kind,
                hash_key(key),
                key[:4] + "…",
                stored_secret(kind, secret),
                safejson.dumps(config or {}).decode(),  # huge integers kept as text
                now_ms(),
            ),
        )
        row = conn.one(f"SELECT {_COLUMNS} FROM sources WHERE name = ?", (name,))
    assert row is not None
    return _from_row(row), key


def list_all(conn: Connection) -> list[Source]:
    """Every source, by id."""
    return [_from_row(r) for r in conn.all(f"SELECT {_COLUMNS} FROM sources ORDER BY id")]


def names(conn: Connection) -> dict[int, str]:
    """Source id -> name, for rendering events (the log holds ids)."""
    return {s.id: s.name for s in list_all(conn)}


def by_name(conn: Connection, name: str) -> Source:
    """The source with that name, or NotFound naming it."""
    row = conn.one(f"SELECT {_COLUMNS} FROM sources WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no source named {name!r}", source=name)
    return _from_row(row)


def by_write_key(conn: Connection, write_key: str) -> Source | None:
    """The source owning this write key, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM sources WHERE write_key_hash = ?", (hash_key(write_key),)
    )
    return None if row is None else _from_row(row)


def by_id(conn: Connection, source_id: int) -> Source | None:
    """The source with that id, or None."""
    row = conn.one(f"SELECT {_COLUMNS} FROM sources WHERE id = ?", (source_id,))
    return None if row is None else _from_row(row)


def rotate_key(conn: Connection, name: str, write_key: str | None = None) -> str:
    """Give the source a new write key (the old one stops working); returns the new key."""
    key = write_key or new_write_key()
    with conn.transaction():
        source = by_name(conn, name)
        conn.execute(
            "UPDATE sources SET write_key_hash = ?, write_key_hint = ? WHERE id = ?",
            (hash_key(key), key[:4] + "…", source.id),
        )
    return key


def set_secret(conn: Connection, name: str, secret: str) -> None:
    """Replace the source's vendor secret (hashed where it is only ever compared)."""
    with conn.transaction():
        source = by_name(conn, name)
        conn.execute(
            "UPDATE sources SET secret = ? WHERE id = ?",
            (stored_secret(source.kind, secret), source.id),
        )


def activity(conn: Connection, since_ms: int, window: int = 1_000_000) -> dict[int, dict[str, int]]:
    """Per source id: events received since ``since_ms`` and the last receipt time, read from the
    newest ``window`` log positions only (the log has no per-source index; this stays bounded)."""
    head = int(conn.scalar("SELECT COALESCE(MAX(seq), 0) FROM events") or 0)
    rows = conn.all(
        "SELECT source_id, SUM(CASE WHEN received_at >= ? THEN 1 ELSE 0 END) AS today, "
        "MAX(received_at) AS last FROM events WHERE seq > ? GROUP BY source_id",
        (since_ms, head - window),
    )
    return {
        int(r["source_id"]): {"today": int(r["today"] or 0), "last": int(r["last"] or 0)}
        for r in rows
    }
