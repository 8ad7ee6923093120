"""``serve``'s HTTP protocol: read deadlines (a connection that trickles its request is closed:
slowloris) and one write per answer (``OneWrite``).

uvicorn closes idle keep-alive connections but waits forever for the rest of a request that
has begun. This protocol (uvicorn's httptools one, plus timers) gives each request
``header_timeout_seconds`` to send its complete headers, and closes a connection whose body
pauses for longer than ``body_timeout_seconds``. ``max_connections`` caps how many are held.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from engagehub.settings import get_settings


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a body idle timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        self._read_timer: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._read_timed_out, seconds)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self, seconds: float) -> None:
        self._read_timer = None
        if self.flow is not None and self.flow.read_paused:
            self._arm(seconds)  # we stopped reading, not the client: wait again
            return
        if not self.transport.is_closing():
            self.logger.info("closing %s: request not received within %s s", self.client, seconds)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = OneWrite(transport, self.loop)  # type: ignore[assignment]
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if isinstance(self.transport, OneWrite):
            self.transport.hold_next()
        self._arm(self.body_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()


class OneWrite:
    """The connection's transport, but a response's head is held until its body's first bytes
    and both go out in one ``send()``: uvicorn writes them separately, and on loopback or a
    LAN each send costs the server a system call and a TCP segment (~40 us a request)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._hold = False
        self._held: bytes | None = None

    def hold_next(self) -> None:
        """The next write is a response head: keep it for the body (or the next loop turn)."""
        self._hold = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif self._hold:
            self._hold = False
            self._held = bytes(data)
            self._loop.call_soon(self.flush)  # a streamed body: the head must not wait
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a held head (its body did not follow at once)."""
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
