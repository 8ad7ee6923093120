"""The types every provider module shares: what is sent, what comes back, how it fails.

A leaf of the providers package: provider modules import it, never the package itself, so the
package (which picks a provider) and its modules do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from engagehub.errors import EngagehubError, TerminalException, TransientException, terminal_status
from engagehub.messaging.templates import Rendered
from engagehub.settings import Settings


@dataclass(slots=True)
class Outgoing:
    """One rendered message for one recipient, with our message id."""

    message_id: str
    channel: str
    to: str
    rendered: Rendered
    headers: dict[str, str] = field(default_factory=dict)
    """Extra email headers (List-Unsubscribe, List-Unsubscribe-Post)."""


@dataclass(slots=True)
class Accepted:
    """The provider took the message: its own id and status."""

    provider_message_id: str | None
    status: str
    raw: Mapping[str, Any] = field(default_factory=dict)


class ProviderError(EngagehubError):
    """A provider refused or failed; its class says whether retrying can help
    (``errors.is_terminal``: only ``TerminalProviderError`` is final)."""

    code = "provider_failed"
    http_status = 502

    def __init__(
        self, message: str, status: int | None = None, provider_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.provider_code = provider_code
        """The provider's own error code (Twilio 21211...), recorded as ``error_code``."""


class TransientProviderError(ProviderError, TransientException):
    """Worth retrying (timeouts, connection errors, 408/429/5xx; idempotency keys make it safe)."""


class TerminalProviderError(ProviderError, TerminalException):
    """The provider refused this message; sending it again cannot succeed."""


def provider_error(
    message: str, terminal: bool, status: int | None = None, provider_code: str | None = None
) -> ProviderError:
    """The error of the right class for a failure already judged terminal or not."""
    kind = TerminalProviderError if terminal else TransientProviderError
    return kind(message, status=status, provider_code=provider_code)


def http_error(message: str, status: int, provider_code: str | None = None) -> ProviderError:
    """A failing HTTP answer, classified by the one rule (``errors.terminal_status``)."""
    return provider_error(message, terminal_status(status), status, provider_code)


class Provider(Protocol):
    """The interface every provider module implements."""

    name: str
    channel: str
    repeatable_finish: bool
    """True when ``finish`` may be repeated without a second message (idempotency key)."""

    async def open(self) -> None:
        """Connect (pools are opened once per batch of sends)."""

    async def close(self) -> None:
        """Release connections."""

    async def prepare(self, msg: Outgoing) -> Any:
        """Reversible work; the returned handle goes to ``finish`` or ``abandon``."""

    def release(self, handle: Any) -> None:
        """Start the irreversible step synchronously, right after the commit (no await between:
        the window in which a crash loses a committed message is as short as it can be)."""

    async def finish(self, handle: Any) -> Accepted:
        """Hand the message over (or complete what ``release`` started); raises ProviderError."""

    async def abandon(self, handle: Any) -> None:
        """Give up a prepared message (its connection is reset)."""


class HttpApiProvider:
    """What the HTTP API providers share: one ``httpx`` pool per batch, a repeatable request
    (an idempotency key or an API that dedupes), nothing to prepare, release or abandon.
    A subclass says how to build its client (``client_options``) and sends in ``finish``."""

    repeatable_finish = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: httpx.AsyncClient | None = None

    def client_options(self) -> dict[str, Any]:
        """``httpx.AsyncClient`` keyword arguments: base URL, authentication, timeout."""
        raise NotImplementedError

    async def open(self) -> None:
        """One HTTP client (connection pool) per batch."""
        self._pool = httpx.AsyncClient(**self.client_options())

    @property
    def client(self) -> httpx.AsyncClient:
        """The open pool (``open()`` first)."""
        if self._pool is None:
            raise RuntimeError(f"{type(self).__name__}: open() first")
        return self._pool

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.aclose()

    async def prepare(self, msg: Outgoing) -> Outgoing:
        """Nothing to do before the request."""
        return msg

    def release(self, handle: Outgoing) -> None:
        """Nothing to start early: the request is repeatable."""

    async def abandon(self, handle: Outgoing) -> None:
        """Nothing was sent."""
