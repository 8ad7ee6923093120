"""Dashboard sessions: the admin token, once checked, becomes a signed, expiring cookie.

The cookie holds ``{exp, csrf}`` signed with HMAC-SHA256 under a key derived from a random
server secret (table ``meta``) and the admin token's hash, so rotating the token ends every
session. Forms carry the session's CSRF token; the login form uses a double-submit cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from engagehub.storage.base import Connection

SESSION = "engagehub_dashboard"
LOGIN_CSRF = "engagehub_login_csrf"
MAX_AGE_S = 12 * 3600
_META_KEY = "dashboard_secret"


def server_secret(conn: Connection) -> str:
    """The random signing secret, created on first use."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (_META_KEY, secrets.token_hex(32)),
    )
    return str(conn.scalar("SELECT value FROM meta WHERE key = ?", (_META_KEY,)))


def _key(secret: str, token_hash: str) -> bytes:
    return hashlib.sha256(f"{secret}:{token_hash}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: str, token_hash: str, name: str = "bootstrap") -> tuple[str, str]:
    """(cookie value, csrf token) of a new session of the token called ``name``."""
    csrf = secrets.token_urlsafe(24)
    claims = {"exp": int(time.time()) + MAX_AGE_S, "csrf": csrf, "tok": name}
    payload = _b64(orjson.dumps(claims))
    sig = _b64(hmac.new(_key(secret, token_hash), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{sig}", csrf


def read(value: str | None, secret: str, token_hash: str) -> dict[str, Any] | None:
    """The session in a cookie, or None when missing, forged or expired."""
    if not value or "." not in value:
        return None
    payload, _, sig = value.partition(".")
    expected = _b64(hmac.new(_key(secret, token_hash), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        return None
    try:
        data = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or int(data.get("exp", 0)) < time.time():
        return None
    return data


def claimed_token(value: str | None) -> str | None:
    """The token name a cookie claims, unverified (it says which key to verify it with)."""
    if not value or "." not in value:
        return None
    try:
        data = orjson.loads(_unb64(value.partition(".")[0]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    name = data.get("tok", "bootstrap") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def is_https(request: Request) -> bool:
    """Direct TLS, or a proxy saying so."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, Secure on https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens (both present)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
