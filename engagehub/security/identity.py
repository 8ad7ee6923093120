"""Who a request is, as far as can be known before reading its body: a verified credential or
its client address. The rate limiter and the body limits key on this, never on raw header values
(rotating bogus tokens would otherwise get a fresh bucket each time).
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from engagehub.access.tokens import resolve, token_hash
from engagehub.api.auth import SESSION_COOKIE
from engagehub.vendors.common import basic_user

Headers = dict[bytes, bytes]


_FAILED = "engagehub_auth_failed"


def failed_authentication(request: Request) -> None:
    """Count this request as a failed authentication though it answers 2xx (the login page)."""
    setattr(request.state, _FAILED, True)


def auth_failed(scope: Scope, status: int) -> bool:
    """Whether a finished request was a failed authentication (401, or marked so)."""
    return status == 401 or bool((scope.get("state") or {}).get(_FAILED))


def client_address(scope: Scope) -> str:
    """The peer address (uvicorn applies trusted X-Forwarded-For before we see it)."""
    client = scope.get("client") or ("?", 0)
    return str(client[0])


async def verified_credential(scope: Scope, headers: Headers) -> str | None:
    """``admin`` or ``source:<id>`` when the request carries a credential that checks out.

    Only credentials in headers are checked (the admin bearer token, API or dashboard session
    cookie, a write key as HTTP Basic user or ``X-XNG-AuthToken``); vendor signatures cover the
    body and are checked by their routes, so signed webhooks are counted by client address.
    """
    app: Any = scope.get("app")
    hub = getattr(getattr(app, "state", None), "hub", None)
    if hub is None:
        return None
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    scheme, _, value = auth.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        found = await bearer_identity(hub, value)
        if found is not None:
            return found
    key = basic_user(value) if scheme.lower() == "basic" else None
    key = key or headers.get(b"x-xng-authtoken", b"").decode("latin-1").strip() or None
    if key is not None:
        source = await hub.find_write_key(key)
        return f"source:{source.id}" if source is not None else None
    cookies = headers.get(b"cookie", b"")
    cookie = _cookie(cookies, SESSION_COOKIE)
    if cookie:
        return await bearer_identity(hub, cookie)
    return _dashboard_identity(app, hub, _cookie(cookies, "engagehub_dashboard"))


def _dashboard_identity(app: Any, hub: Any, cookie: str | None) -> str | None:
    """``admin`` for a valid dashboard session (once the dashboard has loaded its secret)."""
    secret = getattr(app.state, "dashboard_secret", None)
    if not cookie or secret is None:
        return None
    from engagehub.web import session  # the dashboard depends on us, not the other way round

    return "admin" if session.read(cookie, secret, hub.admin_token_hash) is not None else None


async def bearer_identity(hub: Any, token: str) -> str | None:
    """``admin``, or ``token:<name>`` for a live scoped token (issue 19), or None."""
    if _is_admin(token, hub.admin_token_hash):
        return "admin"
    digest = token_hash(token)
    found = await hub.read(lambda conn: resolve(conn, digest, hub.admin_token_hash))
    return f"token:{found.name}" if found is not None else None


def _is_admin(token: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(token_hash(token), expected)


def _cookie(header: bytes, name: str) -> str | None:
    prefix = name + "="
    for part in header.decode("latin-1").split(";"):
        part = part.strip()
        if part.startswith(prefix):
            return part[len(prefix) :] or None
    return None
