"""CORS for the Segment-compatible ingest API (``/v1/*``), so browser libraries can call it.

analytics.js posts from the page's own origin with a Basic ``Authorization`` header and
``X-Retry-Count``, which makes every call a non-simple request: the browser first sends an
``OPTIONS`` preflight and then only hands the reply to the page when it carries
``Access-Control-Allow-Origin``. This middleware answers preflights itself (204) and adds that
header to every ``/v1/`` reply, errors and crashes included, so a page sees why a call failed.

Allowing any origin by default is safe: a write key is public (it ships in the page's script),
and all it can do is append events to its own source; it reads nothing, changes no setting,
and no cookie or other ambient credential is honoured on these routes. A source may still list
the origins allowed to use its key (``config.allowed_origins``): calls from other origins are
refused with 403 (the reply still carries the CORS header, so the page can read the reason).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engagehub.errors import ForbiddenError, PayloadError, error_body
from engagehub.http import JSONResponse

PREFIX = "/v1/"
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Retry-Count"
EXPOSED_HEADERS = "Retry-After"
MAX_AGE = "86400"  # seconds a browser may reuse a preflight (Chromium caps it at 7200)
CONFIG_KEY = "allowed_origins"
_MAX_ORIGIN = 300
_ORIGIN = re.compile(r"^(\*|https?://[^/\s]+/?)$")


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers") or ():
        if name == wanted:
            return bytes(value)
    return None


def cors_headers(origin: bytes | None) -> list[tuple[bytes, bytes]]:
    """The headers every ``/v1/`` reply carries: the caller's origin echoed (``*`` without one)."""
    headers = [
        (b"access-control-allow-origin", origin or b"*"),
        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
    ]
    if origin:
        headers.append((b"vary", b"Origin"))
    return headers


class CorsMiddleware:
    """Answers ``/v1/`` preflights and adds the CORS headers to every ``/v1/`` reply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        found = _header(scope, b"origin")
        origin = found[:_MAX_ORIGIN] if found else None
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, origin, send)
            return
        extra = cors_headers(origin)
        started = False

        async def wrapped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {n.lower() for n, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (n, v) for n, v in extra if n not in names
                ]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            # The crash handler outside us would answer without CORS headers: answer here (the
            # same shape) and re-raise, so the error is still logged and the server sees it.
            if not started:
                body = error_body("internal", "internal error; see the server log", {})
                await JSONResponse(body, status_code=500)(scope, receive, wrapped)
            raise

    @staticmethod
    async def _preflight(scope: Scope, origin: bytes | None, send: Send) -> None:
        headers = [
            *cors_headers(origin),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE.encode()),
            (b"cache-control", b"no-store"),
        ]
        if _header(scope, b"access-control-request-private-network") == b"true":
            headers.append((b"access-control-allow-private-network", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def check_config(config: dict[str, Any]) -> None:
    """A new source's ``allowed_origins``, when given, must be a list of origins."""
    value = config.get(CONFIG_KEY)
    if value is None:
        return
    if not isinstance(value, list) or not all(
        isinstance(o, str) and _ORIGIN.match(o) for o in value
    ):
        raise PayloadError(
            f"{CONFIG_KEY} must be a list of origins such as 'https://shop.example'",
            field=f"config.{CONFIG_KEY}",
            value=value,
        )


def normalize(origin: str) -> str:
    """Origins compare without case and without a trailing slash."""
    return origin.strip().rstrip("/").lower()


def check_origin(origin: str | None, source_name: str, config: dict[str, Any]) -> None:
    """403 when the source lists its origins and a browser call comes from another one."""
    listed = config.get(CONFIG_KEY)
    if not isinstance(listed, list) or origin is None:
        return  # server-side libraries send no Origin; they are not what the list is about
    allowed: Sequence[str] = [normalize(str(o)) for o in listed]
    if "*" in allowed:
        return
    if normalize(origin) not in allowed:
        raise ForbiddenError(
            f"origin {origin[:_MAX_ORIGIN]!r} may not use the write key of source "
            f"{source_name!r}; its allowed origins are {', '.join(allowed)}",
            origin=origin[:_MAX_ORIGIN],
            source=source_name,
            allowed_origins=list(allowed),
        )
