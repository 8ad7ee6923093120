"""SMTP (aiosmtplib): a small pool of connections, DATA split at its final "." for exactly-once.

``prepare`` sends MAIL, RCPT, DATA and the dot-stuffed message; ``finish`` sends the final "."
and reads the reply. A process killed before ``finish`` drops the connection mid-DATA and the
server discards the message (RFC 5321 §4.1.1.4), so the send is retried safely after a restart.
Reply codes: 5xx is permanent, 4xx and lost connections are transient.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

import aiosmtplib

from engagehub.messaging.providers import Accepted, Outgoing, ProviderError
from engagehub.settings import Settings

NAME = "smtp"
_PERIOD = re.compile(rb"(?m)^\.")


def build(msg: Outgoing, sender: str) -> bytes:
    """The RFC 5322 message: multipart text/HTML, our Message-ID, extra headers."""
    mail = EmailMessage(policy=SMTP_POLICY)
    mail["From"] = sender
    mail["To"] = msg.to
    mail["Subject"] = msg.rendered.subject or ""
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{msg.message_id}@engagehub>"
    mail["X-Engagehub-Message-Id"] = msg.message_id
    for key, value in msg.headers.items():
        mail[key] = value
    text, html = msg.rendered.text, msg.rendered.html
    if text is not None:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    else:
        mail.set_content(html or "", subtype="html")
    return mail.as_bytes()


def _error(exc: Exception) -> ProviderError:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
        return ProviderError(f"SMTP {code}: {exc.message}", terminal=500 <= code < 600, status=code)
    return ProviderError(f"SMTP: {type(exc).__name__}: {exc}", terminal=False)


@dataclass(slots=True)
class _Handle:
    client: aiosmtplib.SMTP
    message_id: str


class Smtp:
    """Email through an SMTP server."""

    name = NAME
    channel = "email"
    repeatable_finish = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._all: list[aiosmtplib.SMTP] = []

    async def open(self) -> None:
        """Connections are made lazily, up to ``smtp_connections``."""
        self._idle = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.settings.smtp_connections)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.provider_timeout_seconds,
            start_tls=s.smtp_starttls,
            use_tls=False,
        )
        await client.connect()
        if s.smtp_username and s.smtp_password is not None:
            await client.login(s.smtp_username, s.smtp_password.get_secret_value())
        self._all.append(client)
        return client

    async def _take(self) -> aiosmtplib.SMTP:
        assert self._idle is not None, "open() first"
        assert self._slots is not None
        await self._slots.acquire()
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        try:
            return await self._connect()
        except Exception as exc:
            self._slots.release()
            raise _error(exc) from None

    def _give_back(self, client: aiosmtplib.SMTP) -> None:
        assert self._idle is not None
        assert self._slots is not None
        if client.is_connected:
            self._idle.put_nowait(client)
        self._slots.release()

    async def prepare(self, msg: Outgoing) -> _Handle:
        """Envelope and body, without the final "."."""
        client = await self._take()
        data = _PERIOD.sub(b"..", build(msg, self.settings.email_from))
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        try:
            await client.mail(self.settings.email_from)
            await client.rcpt(msg.to)
            reply = await client.execute_command(b"DATA")
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            assert client.protocol is not None
            client.protocol.write(data)
        except Exception as exc:
            await self._reset(client)
            raise _error(exc) from None
        return _Handle(client, msg.message_id)

    async def finish(self, handle: _Handle) -> Accepted:
        """The final "." of DATA: the server now has the message."""
        try:
            reply = await handle.client.execute_command(b".")
        except Exception as exc:
            handle.client.close()
            self._give_back(handle.client)
            raise _error(exc) from None
        if reply.code != 250:
            await self._reset(handle.client)
            raise _error(aiosmtplib.SMTPDataError(reply.code, reply.message))
        self._give_back(handle.client)
        return Accepted(handle.message_id, "processed", {"reply": reply.message})

    async def abandon(self, handle: _Handle) -> None:
        """Drop the connection mid-DATA: the server discards the message."""
        handle.client.close()
        self._give_back(handle.client)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except Exception:
            client.close()
        self._give_back(client)

    async def close(self) -> None:
        """QUIT every connection."""
        for client in self._all:
            if client.is_connected:
                try:
                    await client.quit()
                except Exception:
                    client.close()
        self._all.clear()
