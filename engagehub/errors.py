"""One exception tree for engagehub; every error a client sees is rendered from it.

    EngagehubError                      500 internal
    ├── PayloadError                    400 invalid_payload     (malformed JSON, wrong types)
    │   └── ValidationFailed            400 validation_failed   (every event of a batch rejected)
    ├── AuthError                       401 unauthorized        (missing/unknown write key, token)
    ├── SignatureError                  401 invalid_signature   (forged, stale or missing signature)
    ├── ForbiddenError                  403 forbidden
    ├── NotFound                        404 not_found
    ├── ConflictError                   409 conflict
    ├── PayloadTooLarge                 413 payload_too_large
    ├── UriTooLong                      414 uri_too_long
    ├── UnsupportedMediaType            415 unsupported_media_type
    ├── RateLimited                     429 rate_limited
    ├── TransientError                  503 unavailable         (retry: storage busy, disk full)
    └── ConfigError                     500 config_error        (bad settings; names the variable)

Every error is rendered as ``{"error": {"code", "message", "details"}}``; ``details`` carries the
offending field and value so a client can fix its request without reading our logs.

Whether work that failed is worth retrying is said once, by two marker classes (dlt-style):
an error class also derives from ``TransientException`` or ``TerminalException``, and
``is_terminal(exc)`` reads it. Only errors marked terminal are final: an unknown exception is
transient, so a surprise is retried with backoff rather than dropped. Destination deliveries
(``destinations.errors``) and message providers (``messaging.providers.base``) use them, and
``terminal_status`` is the one HTTP status rule both apply.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "EngagehubError",
    "ForbiddenError",
    "NotFound",
    "PayloadError",
    "PayloadTooLarge",
    "RateLimited",
    "SignatureError",
    "TerminalException",
    "TransientError",
    "TransientException",
    "UnsupportedMediaType",
    "UriTooLong",
    "ValidationFailed",
    "error_body",
    "is_terminal",
    "terminal_status",
]


class TransientException(Exception):
    """Marker: the same work may succeed later (timeouts, 5xx, 408/429, anything unknown)."""


class TerminalException(Exception):
    """Marker: retrying the same work cannot succeed (the other side refused it)."""


def is_terminal(exc: BaseException) -> bool:
    """Whether retrying cannot help: only errors marked terminal; unknown errors are transient."""
    return isinstance(exc, TerminalException)


def terminal_status(status: int) -> bool:
    """The one HTTP rule: a 4xx answer is final except 408 (timeout) and 429 (rate limit); 5xx
    and anything unexpected (1xx/3xx we did not follow) is worth retrying."""
    return 400 <= status < 500 and status not in (408, 429)


class EngagehubError(Exception):
    """Base of every error we raise on purpose; carries an HTTP status and a stable code."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def body(self) -> dict[str, Any]:
        """The one JSON error shape."""
        return error_body(self.code, self.message, self.details)


class PayloadError(EngagehubError):
    """The request body cannot be used as sent (syntax, types, missing fields)."""

    code = "invalid_payload"
    http_status = 400


class ValidationFailed(PayloadError):
    """Every event of a batch was rejected; details list each one."""

    code = "validation_failed"


class AuthError(EngagehubError):
    """No credentials, or credentials we do not know."""

    code = "unauthorized"
    http_status = 401


class SignatureError(EngagehubError):
    """A vendor signature is missing, forged, or outside its replay window."""

    code = "invalid_signature"
    http_status = 401


class ForbiddenError(EngagehubError):
    """Known credentials that may not do this."""

    code = "forbidden"
    http_status = 403


class NotFound(EngagehubError):
    """The thing named in the request does not exist."""

    code = "not_found"
    http_status = 404


class ConflictError(EngagehubError):
    """The request conflicts with existing state (duplicate name...)."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(EngagehubError):
    """Body or event over the documented size limit."""

    code = "payload_too_large"
    http_status = 413


class UriTooLong(EngagehubError):
    """A request path over the documented length limit."""

    code = "uri_too_long"
    http_status = 414


class UnsupportedMediaType(EngagehubError):
    """A content type or encoding we do not read."""

    code = "unsupported_media_type"
    http_status = 415


class RateLimited(EngagehubError):
    """Too many requests; ``details.retry_after`` says when to come back."""

    code = "rate_limited"
    http_status = 429


class TransientError(EngagehubError, TransientException):
    """A failure the client should retry (storage busy, disk full); nothing was acknowledged."""

    code = "unavailable"
    http_status = 503


class ConfigError(EngagehubError):
    """A setting is invalid; the message names the variable to fix."""

    code = "config_error"
    http_status = 500


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build ``{"error": {"code", "message", "details"}}``."""
    return {"error": {"code": code, "message": message, "details": details or {}}}
