"""Scoped API tokens: ``read`` never changes state, ``write`` manages all but tokens and erasure,
``admin`` does everything. Stored as SHA-256 hashes and shown once; the bootstrap admin token
(``ENGAGEHUB_ADMIN_TOKEN`` or the generated one) is the principal ``bootstrap`` with scope admin.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from engagehub.errors import ConflictError, ForbiddenError, NotFound, PayloadError
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

SCOPES = ("read", "write", "admin")
BOOTSTRAP = "bootstrap"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CACHE_TTL = 2.0
_CACHE_MAX = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a management call: a token's name and scope, and the way in (api, dashboard)."""

    name: str
    scope: str
    token_hash: str
    via: str = "api"

    def allows(self, needed: str) -> bool:
        """Whether this scope covers ``needed`` (read < write < admin)."""
        return SCOPES.index(self.scope) >= SCOPES.index(needed)

    def require(self, needed: str, action: str) -> None:
        """403 naming the missing scope."""
        if not self.allows(needed):
            raise ForbiddenError(
                f"token {self.name!r} has scope {self.scope!r}; {action} needs {needed!r}",
                token=self.name,
                scope=self.scope,
                required=needed,
            )


def token_hash(token: str) -> str:
    """What we store and compare: SHA-256 hex of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_scope(scope: str) -> str:
    """A valid scope, or a clear error naming the value."""
    if scope not in SCOPES:
        raise PayloadError(
            f"unknown scope {scope!r}; expected read, write or admin", field="scope", value=scope
        )
    return scope


def create(conn: Connection, name: str, scope: str) -> tuple[dict[str, Any], str]:
    """A new token (row without its hash, and the token itself, shown once)."""
    if not _NAME.fullmatch(name or "") or name == BOOTSTRAP:
        raise PayloadError(
            f"invalid token name {name!r}: 1-64 letters, digits, '.', '_' or '-' "
            f"(and not {BOOTSTRAP!r})",
            field="name",
            value=name,
        )
    check_scope(scope)
    if conn.one("SELECT name FROM access_tokens WHERE name = ?", (name,)):
        raise ConflictError(f"a token named {name!r} exists (names are never reused)", name=name)
    token = f"eh{scope[0]}_" + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO access_tokens (name, scope, token_hash, hint, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (name, scope, token_hash(token), token[:8] + "…", now_ms()),
    )
    _CACHE.clear()
    return get(conn, name), token


def get(conn: Connection, name: str) -> dict[str, Any]:
    """One token's public row."""
    row = conn.one(
        "SELECT name, scope, hint, created_at, revoked_at FROM access_tokens WHERE name = ?",
        (name,),
    )
    if row is None:
        raise NotFound(f"no token named {name!r}", name=name)
    return {**row, "revoked": row["revoked_at"] is not None}


def list_all(conn: Connection) -> list[dict[str, Any]]:
    """Every token, revoked ones included (never their hashes)."""
    rows = conn.all(
        "SELECT name, scope, hint, created_at, revoked_at FROM access_tokens ORDER BY name"
    )
    return [{**r, "revoked": r["revoked_at"] is not None} for r in rows]


def revoke(conn: Connection, name: str) -> dict[str, Any]:
    """Revoke a token for good (idempotent); its dashboard sessions end with it."""
    get(conn, name)
    conn.execute(
        "UPDATE access_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
        (now_ms(), name),
    )
    _CACHE.clear()
    return get(conn, name)


# Valid tokens only (unknown ones are never cached: anonymous callers cannot grow it).
_CACHE: dict[str, tuple[float, Principal | None]] = {}


def _lookup(conn: Connection, column: str, value: str) -> Principal | None:
    row = conn.one(
        f"SELECT name, scope, token_hash FROM access_tokens WHERE {column} = ? "
        "AND revoked_at IS NULL",
        (value,),
    )
    return Principal(row["name"], row["scope"], row["token_hash"]) if row else None


def resolve(conn: Connection, digest: str, bootstrap_hash: str) -> Principal | None:
    """The principal whose token hashes to ``digest`` (constant time for the bootstrap one)."""
    if bootstrap_hash and hmac.compare_digest(digest, bootstrap_hash):
        return Principal(BOOTSTRAP, "admin", bootstrap_hash)
    return _cached("h:" + digest, lambda: _lookup(conn, "token_hash", digest))


def by_name(conn: Connection, name: str, bootstrap_hash: str) -> Principal | None:
    """The live principal called ``name`` (dashboard sessions re-check it on every page)."""
    if name == BOOTSTRAP:
        return Principal(BOOTSTRAP, "admin", bootstrap_hash) if bootstrap_hash else None
    return _cached("n:" + name, lambda: _lookup(conn, "name", name))


def _cached(key: str, load: Any) -> Principal | None:
    now = time.monotonic()
    hit = _CACHE.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    found: Principal | None = load()
    if found is not None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = (now + _CACHE_TTL, found)
    return found
