"""One pure-ASGI middleware in front of every route: limits first, then headers on every answer.

- NUL characters in the path or query are refused (400): no store can keep them faithfully.
- Paths longer than ``max_path_chars`` are refused (414): nothing keyed by a path grows large.
- Bodies over the route family's limit are refused (413) from ``Content-Length`` or while
  streaming, before FastAPI buffers them (ingest routes add their own, stricter limits). Outside
  the ingest routes a request without a verified credential may send only a small body (forms):
  nothing is buffered for a caller that has not authenticated (401 for ``/api/``).
- Each verified credential (or, without one, each client address) gets a token bucket (429 with
  ``Retry-After``); failed authentications (401) have a stricter bucket per client address.
- A crash answers 500 in the one error shape, with the security headers, and keeps the connection
  usable (the exception never reaches the server).
- A state-changing request authenticated only by the dashboard cookie must come from our own
  origin (``Origin``/``Referer`` match ``Host``): cross-site request forgery gets 403.
- Every answer gets ``nosniff``, frame denial, no referrer, ``no-store`` caching, a
  Content-Security-Policy, and cookies forced to ``HttpOnly; SameSite=Lax`` (``Secure`` on https).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engagehub.api.auth import SESSION_COOKIE
from engagehub.errors import (
    AuthError,
    EngagehubError,
    ForbiddenError,
    PayloadError,
    PayloadTooLarge,
    RateLimited,
    UriTooLong,
)
from engagehub.http import crash_response, error_response
from engagehub.security.identity import auth_failed, client_address, verified_credential
from engagehub.security.ratelimit import RateLimiter
from engagehub.settings import Settings

logger = logging.getLogger(__name__)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
INGEST_PREFIXES = ("/v1/", "/crossengage/", "/webhooks/")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_SESSION = (SESSION_COOKIE + "=").encode()
_STATIC = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityMiddleware:
    """Limits, CSRF and response headers for every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.failures = RateLimiter(
            settings.auth_failure_rate_per_second, settings.auth_failure_burst
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        send = self._with_headers(scope, send, status)
        headers: dict[bytes, bytes] = dict(scope.get("headers") or ())  # names are lowercase
        address = client_address(scope)
        try:
            self._check_text(scope)
            who = await verified_credential(scope, headers)
            limit = self.body_limit(scope, headers, who)
            declared = self._check_length(scope, headers, limit, who)
            self._check_rate(who, address)
            self._check_origin(scope, headers)
        except EngagehubError as exc:
            await error_response(exc)(scope, receive, send)
            self._count_failure(scope, exc.http_status, address)
            return
        # With a declared length the server never delivers more; otherwise count as it streams.
        try:
            await self.app(scope, receive if declared else _limited(receive, limit), send)
        except ClientDisconnect:
            return  # the client went away (or was closed for being too slow): nobody to answer
        except Exception:
            if status:  # the answer has begun: all the server can do is drop the connection
                raise
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"][:200])
            await crash_response()(scope, receive, send)
        self._count_failure(scope, status[0] if status else 500, address)

    # --- checks --------------------------------------------------------------------------

    def _check_text(self, scope: Scope) -> None:
        if len(scope["path"]) > self.settings.max_path_chars:
            raise UriTooLong(
                f"path is {len(scope['path'])} characters; the limit is "
                f"{self.settings.max_path_chars}",
                size=len(scope["path"]),
                limit=self.settings.max_path_chars,
            )
        if "\x00" in scope["path"]:
            raise PayloadError("the path contains a NUL character", path=scope["path"][:200])
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    raise PayloadError(
                        f"query parameter {name!r} contains a NUL character",
                        field=name.replace("\x00", "\\0"),
                    )

    def body_limit(self, scope: Scope, headers: dict[bytes, bytes], who: str | None) -> int:
        """The largest body this path, content type and credential may carry."""
        s = self.settings
        if scope["path"].startswith(INGEST_PREFIXES):
            return max(s.max_batch_bytes, s.max_webhook_bytes)
        if who is None:
            return s.max_anonymous_body_bytes
        if headers.get(b"content-type", b"").startswith(b"multipart/"):
            return s.max_upload_bytes
        return s.max_api_body_bytes

    @staticmethod
    def _check_length(
        scope: Scope, headers: dict[bytes, bytes], limit: int, who: str | None
    ) -> bool:
        """Whether the request declares a valid length; 413 (401 unauthenticated) over ``limit``."""
        declared = headers.get(b"content-length", b"").strip()
        if not declared.isdigit() or len(declared) > 18:
            return False
        size = int(declared)
        if size > limit and who is None and scope["path"].startswith("/api/"):
            raise AuthError(
                f"authenticate before sending a body of {size} bytes; without a valid admin "
                f"token the limit is {limit}",
                size=size,
                limit=limit,
                hint="send Authorization: Bearer <token>",
            )
        if size > limit:
            raise PayloadTooLarge(
                f"body is {size} bytes; the limit is {limit}", size=size, limit=limit
            )
        return True

    def _check_rate(self, who: str | None, address: str) -> None:
        """One bucket per verified credential, else per address; failed auths block early."""
        if who is None and self.failures.enabled:
            wait = self.failures.peek("fail:" + address)
            if wait:
                raise RateLimited(
                    f"too many failed authentications from {address}; retry in {wait} s",
                    retry_after=wait,
                    limit_per_second=self.failures.rate,
                )
        if not self.limiter.enabled:
            return
        wait = self.limiter.check(rate_key(who, address))
        if wait:
            raise RateLimited(
                f"too many requests for this key; retry in {wait} s",
                retry_after=wait,
                limit_per_second=self.limiter.rate,
            )

    def _count_failure(self, scope: Scope, status: int, address: str) -> None:
        """A failed authentication takes a token from the address's stricter bucket."""
        if auth_failed(scope, status):
            self.failures.check("fail:" + address)

    @staticmethod
    def _check_origin(scope: Scope, headers: dict[bytes, bytes]) -> None:
        if scope["method"] not in _UNSAFE or b"cookie" not in headers:
            return
        if headers.get(b"authorization", b"").strip():
            return  # a header credential cannot be sent by a cross-site form
        if _SESSION not in headers[b"cookie"]:
            return
        host = headers.get(b"host", b"").decode("latin-1")
        origin = (headers.get(b"origin") or headers.get(b"referer") or b"").decode("latin-1")
        if not origin or urlsplit(origin).netloc.lower() != host.lower():
            raise ForbiddenError(
                "cross-site request refused: the Origin does not match this server",
                origin=origin[:200] or None,
                host=host[:200],
            )

    # --- response headers ----------------------------------------------------------------

    @staticmethod
    def _with_headers(scope: Scope, send: Send, status: list[int]) -> Send:
        https = scope.get("scheme") == "https"
        docs = scope["path"].startswith(DOCS_PATHS)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                message["headers"] = secure_headers(list(message.get("headers", [])), https, docs)
            await send(message)

        return wrapped


def secure_headers(
    headers: list[tuple[bytes, bytes]], https: bool, docs: bool
) -> list[tuple[bytes, bytes]]:
    """Add the security headers a response lacks and harden its cookies."""
    present = {name.lower() for name, _ in headers}
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == b"set-cookie":
            value = harden_cookie(value, https)
        out.append((name, value))
    out += [(n, v) for n, v in _STATIC if n not in present]
    if b"content-security-policy" not in present:
        ctype = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        csp = DOCS_CSP if docs else PAGE_CSP if ctype.startswith(b"text/html") else API_CSP
        out.append((b"content-security-policy", csp.encode()))
    if b"cache-control" not in present:
        out.append((b"cache-control", b"no-store"))
    if https and b"strict-transport-security" not in present:
        out.append((b"strict-transport-security", b"max-age=31536000"))
    return out


def harden_cookie(value: bytes, https: bool) -> bytes:
    """A Set-Cookie value with HttpOnly, SameSite (Lax unless set) and Secure over https."""
    attrs = {part.strip().split(b"=")[0].lower() for part in value.split(b";")[1:]}
    if b"httponly" not in attrs:
        value += b"; HttpOnly"
    if b"samesite" not in attrs:
        value += b"; SameSite=Lax"
    if https and b"secure" not in attrs:
        value += b"; Secure"
    return value


def rate_key(who: str | None, address: str) -> str:
    """What a request is counted against: its verified credential, else its client address."""
    return "c:" + who if who is not None else "ip:" + address


def _limited(receive: Receive, limit: int) -> Receive:
    """A receive that fails with 413 once the streamed body passes ``limit`` bytes."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"body is over the {limit} byte limit")
        return message

    return wrapped
