"""Admin token for the management API and dashboard, separate from source write keys.

The token comes from ``ENGAGEHUB_ADMIN_TOKEN``; when unset, one is generated on first run,
printed once, and only its SHA-256 hash is kept (table ``meta``).
"""

from __future__ import annotations

from fastapi import Request

from engagehub.access.tokens import Principal, token_hash
from engagehub.api.deps import hub_of
from engagehub.errors import AuthError

SESSION_COOKIE = "engagehub_session"


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
