"""Delivery failures, classified once: transient ones are retried, terminal ones dead-lettered.

EngagehubError
└── DeliveryError
    ├── TransientDeliveryError   timeouts, connection errors, 408, 429, 5xx, 3xx, surprises: retry
    └── TerminalDeliveryError    other 4xx, refused addresses: the batch goes to dead letters

The two carry the markers of ``engagehub.errors`` (``TransientException`` /
``TerminalException``); the HTTP rule is ``errors.terminal_status``.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from engagehub.errors import (
    EngagehubError,
    TerminalException,
    TransientException,
    terminal_status,
)
from engagehub.timeutil import now_ms

__all__ = [
    "DeliveryError",
    "TerminalDeliveryError",
    "TransientDeliveryError",
    "classify",
    "retry_after_seconds",
]


class DeliveryError(EngagehubError):
    """A batch could not be delivered; ``details`` names the destination and what it answered."""

    code = "delivery_failed"
    http_status = 502


class TransientDeliveryError(DeliveryError, TransientException):
    """Worth retrying later; ``retry_after`` (seconds) when the destination asked for a delay."""

    def __init__(self, message: str, retry_after: float | None = None, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class TerminalDeliveryError(DeliveryError, TerminalException):
    """Retrying the same batch will not help (the destination rejected it)."""


def classify(status: int) -> type[DeliveryError] | None:
    """None for success (2xx); else the class ``errors.terminal_status`` picks."""
    if 200 <= status < 300:
        return None
    return TerminalDeliveryError if terminal_status(status) else TransientDeliveryError


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) in seconds; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_ms() / 1000)
