"""Signed per-recipient links: unsubscribe (RFC 8058 one-click) and the preference page.

A token is ``base64url(channel \\0 contact \\0 group) . base64url(HMAC-SHA256)``; the key is
``ENGAGEHUB_SECRET_KEY`` or, when unset, a random secret generated once and kept in the database.
Tokens are compared in constant time, so a link cannot be forged or edited to reach someone else.
The preference form carries a CSRF token bound to the link token and a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from engagehub.errors import SignatureError
from engagehub.settings import Settings
from engagehub.storage.base import Connection

CSRF_MAX_AGE_MS = 2 * 3600 * 1000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_key(conn: Connection, settings: Settings) -> bytes:
    """The signing key: the configured one, else one generated and stored on first use."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    found = conn.scalar("SELECT value FROM messaging_secrets WHERE name = 'links'")
    if found is None:
        with conn.transaction():
            conn.execute(
                "INSERT INTO messaging_secrets (name, value) VALUES ('links', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (secrets.token_hex(32),),
            )
        found = conn.scalar("SELECT value FROM messaging_secrets WHERE name = 'links'")
    return str(found).encode()


@dataclass(slots=True, frozen=True)
class Recipient:
    """Who a link is for: one contact point on one channel, optionally one group."""

    channel: str
    contact: str
    group: str = ""


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, b"unsub:" + payload, hashlib.sha256).digest()


def sign(key: bytes, who: Recipient) -> str:
    """The link token for ``who``."""
    payload = f"{who.channel}\0{who.contact}\0{who.group}".encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str) -> Recipient:
    """The recipient a token was signed for; SignatureError for anything forged or altered."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = _unb64(payload_text)
        mac = _unb64(mac_text)
    except (ValueError, TypeError):
        raise SignatureError("malformed link token", token=token[:40]) from None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise SignatureError("link signature does not match", token=token[:40])
    try:
        channel, contact, group = payload.decode().split("\0")
    except (UnicodeDecodeError, ValueError):
        raise SignatureError("malformed link token", token=token[:40]) from None
    return Recipient(channel, contact, group)


def urls(base: str, token: str) -> tuple[str, str]:
    """(unsubscribe URL, preference page URL) under the public base URL."""
    root = base.rstrip("/")
    return f"{root}/unsubscribe/{quote(token)}", f"{root}/preferences/{quote(token)}"


def csrf_token(key: bytes, token: str, now: int) -> str:
    """A form token bound to the link and a time (checked on submit)."""
    mac = hmac.new(key, f"csrf:{token}:{now}".encode(), hashlib.sha256).digest()
    return f"{now}.{_b64(mac)}"


def check_csrf(key: bytes, token: str, value: str, now: int) -> None:
    """Refuse a form not rendered by us for this link, or rendered too long ago."""
    try:
        issued_text, mac_text = value.split(".", 1)
        issued = int(issued_text)
        mac = _unb64(mac_text)
    except (ValueError, TypeError):
        raise SignatureError("missing or malformed form token; reload the page") from None
    good = hmac.new(key, f"csrf:{token}:{issued}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, good):
        raise SignatureError("form token does not match this page; reload the page")
    if not 0 <= now - issued <= CSRF_MAX_AGE_MS:
        raise SignatureError("form expired; reload the page", issued_at=issued)
