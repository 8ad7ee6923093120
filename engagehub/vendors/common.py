"""Helpers every vendor parser shares: timestamps, text values, bearer tokens, Basic write keys,
form bodies, the per-event rejection loop and the common end of a normalization."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from engagehub import safejson
from engagehub.contacts import quick_contact
from engagehub.errors import PayloadError, SignatureError
from engagehub.model import IncomingEvent, ParseResult, Rejection
from engagehub.taxonomy import Resolved
from engagehub.timeutil import TimestampError, parse_ts


def text(value: object) -> str | None:
    """A non-empty string form of an id-like value, or None (booleans are no ids: None)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value)


def event_time(value: object, field: str, default: int | None = None) -> int:
    """A vendor timestamp in UTC ms; a missing one falls back to ``default`` when given."""
    if value is None or value == "":
        if default is not None:
            return default
        raise PayloadError(f"missing {field}", field=field)
    try:
        return parse_ts(value)
    except TimestampError as exc:
        raise PayloadError(str(exc), field=field, value=str(value)[:100]) from None


def content_hash(*parts: object) -> str:
    """Dedup key for vendor events that carry no id of their own."""
    data = safejson.dumps(list(parts), sort_keys=True)
    return "h:" + hashlib.sha256(data).hexdigest()[:40]


def json_body(body: bytes) -> Any:
    """Parse a JSON body or raise a PayloadError that says where it broke."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise safejson.malformed(exc, body) from None


def form_body(body: bytes) -> list[tuple[str, str]]:
    """An ``application/x-www-form-urlencoded`` body as ordered (name, value) pairs."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"malformed form body: {exc}") from None


def basic_user(value: str) -> str | None:
    """The user name of an HTTP Basic credential (Segment puts the write key there), or None."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded.split(":", 1)[0] or None


def basic_auth_user(headers: Mapping[str, str]) -> str | None:
    """The user name of a request's ``Authorization: Basic`` header, or None."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    return basic_user(value.strip())


def check_bearer(headers: Mapping[str, str], secret: str | None) -> None:
    """Constant-time check of ``Authorization: Bearer <secret>``."""
    if not secret:
        raise SignatureError("this source has no secret configured; refusing unsigned events")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise SignatureError("missing bearer token", header="Authorization")
    if secret.startswith("sha256:"):  # stored hashed (sources.stored_secret): compare digests
        presented = "sha256:" + hashlib.sha256(token.strip().encode()).hexdigest()
    else:
        presented = token.strip()
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise SignatureError("invalid bearer token", header="Authorization")


def collect(
    items: Iterable[Any], one: Callable[[Any], IncomingEvent], ref: str | None = None
) -> ParseResult:
    """Normalize each item with ``one``; a bad item becomes a rejection naming its index and,
    when it has one, its own id (``item[ref]``), so the good items of a batch are kept."""
    result = ParseResult()
    for index, item in enumerate(items):
        try:
            result.events.append(one(item))
        except PayloadError as exc:
            exc.details.setdefault("index", index)
            own = item.get(ref) if ref and isinstance(item, Mapping) else None
            result.rejected.append(Rejection(index, exc, text(own)))
    return result


def settle(props: dict[str, Any], resolved: Resolved, phone: object, region: str) -> str | None:
    """The end every normalization shares: the taxonomy's fixed properties (unless sent), the
    email lower-cased, and the log's contact column (``quick_contact`` of email, else phone)."""
    for key, value in resolved.set.items():
        props.setdefault(key, value)
    email = props.get("email")
    if isinstance(email, str):
        props["email"] = email.strip().lower()
    return quick_contact(email, phone, region)
