"""Admin token for the management API and dashboard, separate from source write keys.

The token comes from ``ENGAGEHUB_ADMIN_TOKEN``; when unset, one is generated on first run,
printed once, and only its SHA-256 hash is kept (table ``meta``).
"""

from __future__ import annotations

import secrets

from fastapi import Request

from engagehub.access.tokens import Principal, token_hash
from engagehub.api.deps import hub_of
from engagehub.errors import AuthError
from engagehub.settings import Settings
from engagehub.storage.base import Connection

_META_KEY = "admin_token_sha256"
SESSION_COOKIE = "engagehub_session"


def ensure_admin_token(conn: Connection, settings: Settings) -> tuple[str, str | None]:
    """(hash to check against, the token if we just generated it)."""
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return token_hash(settings.admin_token.get_secret_value()), None
    stored = conn.scalar("SELECT value FROM meta WHERE key = ?", (_META_KEY,))
    if stored:
        return str(stored), None
    return rotate_admin_token(conn)


def rotate_admin_token(conn: Connection) -> tuple[str, str]:
    """Generate a new stored token (``engagehub admin-token --rotate``); returns (hash, token)."""
    token = "eh_" + secrets.token_urlsafe(32)
    digest = token_hash(token)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_META_KEY, digest),
    )
    return digest, token


def presented_token(request: Request) -> str | None:
    """The admin token a request carries: ``Authorization: Bearer`` or the dashboard cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


async def authenticate(request: Request) -> Principal:
    """The principal of the token a request carries (bootstrap admin or a scoped token); 401."""
    from engagehub.access import tokens

    token = presented_token(request)
    if not token:
        raise AuthError("admin token required", hint="send Authorization: Bearer <token>")
    hub = hub_of(request)
    digest = token_hash(token)
    principal: Principal | None = await hub.read(
        lambda conn: tokens.resolve(conn, digest, hub.admin_token_hash)
    )
    if principal is None:
        raise AuthError("invalid admin token")
    return principal


async def require_admin(request: Request) -> None:
    """FastAPI dependency guarding every management route: a token whose scope covers the call.

    Reads (GET/HEAD) need ``read``, anything else ``write``; token management, erasure and the
    audit log need ``admin`` (``access.scopes.ADMIN_PATHS``). The principal is kept for the
    audit log.
    """
    from engagehub.access.scopes import enforce

    principal = await authenticate(request)
    request.state.principal = principal
    enforce(principal, request.method, request.url.path)
