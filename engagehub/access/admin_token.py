"""The bootstrap admin token: from ``ENGAGEHUB_ADMIN_TOKEN``, or generated once and kept hashed.

When the variable is unset, one is generated on first run, printed once, and only its SHA-256
hash is kept (table ``meta``). Not an HTTP module: the Hub and the CLI use it.
"""

from __future__ import annotations

import secrets

from engagehub.access.tokens import token_hash
from engagehub.settings import Settings
from engagehub.storage.base import Connection

_META_KEY = "admin_token_sha256"


def ensure_admin_token(conn: Connection, settings: Settings) -> tuple[str, str | None]:
    """(hash to check against, the token if we just generated it)."""
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return token_hash(settings.admin_token.get_secret_value()), None
    stored = conn.scalar("SELECT value FROM meta WHERE key = ?", (_META_KEY,))
    if stored:
        return str(stored), None
    return rotate_admin_token(conn)


def rotate_admin_token(conn: Connection) -> tuple[str, str]:
    """Generate a new stored token (``engagehub admin-token --rotate``); returns (hash, token)."""
    token = "eh_" + secrets.token_urlsafe(32)
    digest = token_hash(token)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_META_KEY, digest),
    )
    return digest, token
