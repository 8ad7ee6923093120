"""Click tracking of our own marketing emails: signed redirects and a hidden honeypot link.

Every ``<a href="http(s)://...">`` of a marketing email's HTML (except our own pages:
unsubscribe, preferences, confirmation) becomes ``{public base}/c/{token}``; the token is
``base64url(message id \\0 url) . base64url(HMAC-SHA256)[:16 bytes]``, so the redirect is never
open (only URLs we signed) and needs no table. One more link, invisible and empty, is added
before ``</body>``: people cannot click it, scanners that fetch every ``href`` do. The route
(``GET``/``HEAD /c/{token}``, in ``click_pages``) records an "Email Link Clicked" and redirects.
"""

from __future__ import annotations

import base64
import hmac
import html as html_lib
import re

from engagehub.errors import SignatureError

HONEYPOT = ""
"""The URL a honeypot token carries (no destination)."""
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HIDDEN = (
    '<a href="{url}" aria-hidden="true" tabindex="-1" style="display:none !important;'
    'font-size:0;line-height:0;max-height:0;overflow:hidden;mso-hide:all"></a>'
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, b"click:" + payload, "sha256")[:16]


def sign(key: bytes, message_id: str, url: str) -> str:
    """The token of one link of one message (``HONEYPOT`` as url: the hidden link)."""
    payload = f"{message_id}\0{url}".encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str) -> tuple[str, str]:
    """(message id, url) of a token we signed; SignatureError for anything else."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload, mac = _unb64(payload_text), _unb64(mac_text)
        message_id, url = payload.decode().split("\0")
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("malformed link", token=token[:40]) from None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise SignatureError("link signature does not match", token=token[:40])
    return message_id, url


def rewrite(html: str, base: str, key: bytes, message_id: str) -> str:
    """The HTML with its links tracked and the honeypot link added."""
    root = base.rstrip("/")

    def one(match: re.Match[str]) -> str:
        target = html_lib.unescape(match.group(3))
        if target.startswith(root + "/"):
            return match.group(0)  # our own pages (unsubscribe, preferences): never wrapped
        tracked = f"{root}/c/{sign(key, message_id, target)}"
        # a line break inside the tag keeps lines short: the part stays 7bit, not
        # quoted-printable (encoding that cost more than the rewriting)
        return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}\n"

    out = _HREF.sub(one, html)
    hidden = "\n" + _HIDDEN.format(url=f"{root}/c/{sign(key, message_id, HONEYPOT)}") + "\n"
    end = _BODY_END.search(out)
    return out[: end.start()] + hidden + out[end.start() :] if end else out + hidden
