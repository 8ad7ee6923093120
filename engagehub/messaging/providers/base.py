"""The types every provider module shares: what is sent, what comes back, how it fails.

A leaf of the providers package: provider modules import it, never the package itself, so the
package (which picks a provider) and its modules do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engagehub.messaging.templates import Rendered


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


class ProviderError(Exception):
    """A provider refused or failed; ``terminal`` says whether retrying can help."""

    def __init__(
        self, message: str, terminal: bool, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.terminal = terminal
        self.status = status
        self.code = code
        """The provider's own error code (Twilio 21211...), recorded as ``error_code``."""


def http_terminal(status: int) -> bool:
    """4xx is final except 408 (timeout) and 429 (rate limit); 5xx is retried."""
    return 400 <= status < 500 and status not in (408, 429)


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
