"""Click tracking of our own marketing emails: signed redirects and a hidden honeypot link.

Every ``<a href="http(s)://...">`` of a marketing email's HTML (except our own pages:
unsubscribe, preferences, confirmation) becomes ``{public base}/c/{token}``; the token is
``b64(message id) . b64(url) . b64(HMAC-SHA256 of both)[:16 bytes]`` (base64url), so the
redirect is never open (only URLs we signed) and needs no table. One more link, invisible and
empty, is added before ``</body>``: people cannot click it, scanners that fetch every ``href``
do. The route (``GET``/``HEAD /c/{token}``, in ``click_pages``) records an "Email Link
Clicked" and redirects.
"""

from __future__ import annotations

import base64
import functools
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


@functools.lru_cache(maxsize=4096)
def _url_part(url: str) -> str:
    """A URL's token part (a broadcast repeats the same few URLs for every recipient)."""
    return _b64(url.encode())


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.digest(key, b"click:" + body.encode(), "sha256")[:16])


def _token(key: bytes, mid_part: str, url: str) -> str:
    body = f"{mid_part}.{_url_part(url)}"
    return f"{body}.{_mac(key, body)}"


def sign(key: bytes, message_id: str, url: str) -> str:
    """The token of one link of one message (``HONEYPOT`` as url: the hidden link)."""
    return _token(key, _b64(message_id.encode()), url)


def verify(key: bytes, token: str) -> tuple[str, str]:
    """(message id, url) of a token we signed; SignatureError for anything else."""
    try:
        mid_part, url_part, mac = token.split(".")
        body = f"{mid_part}.{url_part}"
        good = hmac.compare_digest(mac, _mac(key, body))
        message_id, url = _unb64(mid_part).decode(), _unb64(url_part).decode()
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("malformed link", token=token[:40]) from None
    if not good:
        raise SignatureError("link signature does not match", token=token[:40])
    return message_id, url


def rewrite(html: str, base: str, key: bytes, message_id: str) -> str:
    """The HTML with its links tracked and the honeypot link added."""
    root = base.rstrip("/")
    own = root + "/"
    mid_part = _b64(message_id.encode())

    def one(match: re.Match[str]) -> str:
        target = match.group(3)
        if "&" in target:
            target = html_lib.unescape(target)
        if target.startswith(own):
            return match.group(0)  # our own pages (unsubscribe, preferences): never wrapped
        tracked = f"{own}c/{_token(key, mid_part, target)}"
        # a line break inside the tag keeps lines short: the part stays 7bit, not
        # quoted-printable (encoding that cost more than the rewriting)
        return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}\n"

    out = _HREF.sub(one, html)
    hidden = "\n" + _HIDDEN.format(url=f"{own}c/{_token(key, mid_part, HONEYPOT)}") + "\n"
    end = _BODY_END.search(out)
    return out[: end.start()] + hidden + out[end.start() :] if end else out + hidden
