"""JSON encoding that never fails on valid JSON input: integers past 64 bits become strings;
and the nesting checks that keep values within what the encoder (and the API) can render.

orjson (our encoder) refuses integers outside 64 bits, but JSON allows any size and some
parsers (msgspec, ijson) hand them to us as Python ints. One such value must not crash an import
or poison a group commit; it is kept as its exact decimal text instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import orjson

from engagehub.errors import PayloadError

T = TypeVar("T")
_MIN, _MAX = -(2**63), 2**64 - 1
MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted in one event (real payloads nest < 10)."""


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """orjson's bytes for ``value`` (``default=str``), big integers as decimal strings."""
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    try:
        return orjson.dumps(value, option=option, default=str)
    except TypeError:
        return orjson.dumps(big_ints_as_text(value), option=option, default=str)


def big_ints_as_text(value: Any) -> Any:
    """A copy of ``value`` with every integer outside 64 bits replaced by its decimal text."""
    if isinstance(value, dict):
        return {str(k): big_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [big_ints_as_text(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _MIN <= value <= _MAX:
        return str(value)
    return value


def too_deep(value: Any, limit: int) -> bool:
    """Whether objects and arrays in ``value`` nest more than ``limit`` levels (stops early)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _structure(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(position, byte, depth before it) of every bracket, comma and string end outside strings.

    Iterative, so it reads any depth; string ends are reported as a quote byte.
    """
    depth = 0
    in_string = escaped = False
    for i, byte in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
                yield i, byte, depth
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            yield i, byte, depth
            depth += 1
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
            yield i, byte, depth
        elif byte == 0x2C:  # ,
            yield i, byte, depth


def text_too_deep(text: str | bytes, limit: int) -> bool:
    """The same for JSON text; a text with fewer brackets than ``limit`` is answered at once."""
    if isinstance(text, str):
        if text.count("{") + text.count("[") <= limit:  # counted before any encoding
            return False
        data = text.encode()
    elif text.count(b"{") + text.count(b"[") <= limit:
        return False
    else:
        data = text
    return any(byte in (0x7B, 0x5B) and depth >= limit for _, byte, depth in _structure(data))


def array_items(data: bytes, key: bytes) -> tuple[int, int, list[bytes]] | None:
    """Start and end of the array under the top-level ``key`` of a JSON object, and its items'
    text; for bodies too deep for a decoder, so their other items can still be read."""
    start = -1
    item_start = 0
    key_end = -1
    items: list[bytes] = []
    for i, byte, depth in _structure(data):
        if start < 0:
            if byte == 0x22 and depth == 1:
                key_end = i
            elif (
                byte == 0x5B and depth == 1 and data[key_end - len(key) - 1 : key_end] == b'"' + key
            ):
                start = item_start = i + 1
        elif (byte == 0x2C and depth == 2) or (byte == 0x5D and depth == 1):
            text = data[item_start:i].strip()
            if text:
                items.append(text)
            if byte == 0x5D:
                return start - 1, i + 1, items
            item_start = i + 1
    return None


def decode_split(decode: Callable[[bytes], T], body: bytes, key: bytes) -> tuple[T, list[bytes]]:
    """``decode`` the body with the array under ``key`` emptied; that array's items as text.

    For bodies nested too deeply for the decoder: the too-deep items are then refused one by
    one (``text_too_deep``) and the others kept. A depth error when that does not help.
    """
    found = array_items(body, key)
    if found is None:
        raise depth_error("body")
    start, end, items = found
    try:
        return decode(body[:start] + b"[]" + body[end:]), items
    except RecursionError:
        raise depth_error("body") from None


def depth_error(field: str = "event") -> PayloadError:
    """The one refusal of a value nested deeper than ``MAX_DEPTH``."""
    return PayloadError(
        f"{field} nests objects or arrays more than {MAX_DEPTH} levels deep; the limit is "
        f"{MAX_DEPTH}",
        field=field,
        limit=MAX_DEPTH,
    )


_BYTE = re.compile(r"\(byte (\d+)\)")
_NEAR = 24
"""Bytes of the body quoted either side of where malformed JSON broke."""


def malformed(exc: Exception, body: bytes) -> PayloadError:
    """The one refusal of a body that is not JSON, saying where it broke and what is there
    (orjson's ``pos``, msgspec's "(byte N)"; the end of the body when it was cut short)."""
    pos = getattr(exc, "pos", None)
    if not isinstance(pos, int):
        found = _BYTE.search(str(exc))
        pos = int(found.group(1)) if found else len(body)
    pos = min(max(pos, 0), len(body))
    near = body[max(pos - _NEAR, 0) : pos + _NEAR].decode("utf-8", "replace")
    return PayloadError(f"malformed JSON at position {pos}: {exc}", position=pos, near=near)


def check_depth(value: Any, field: str = "event") -> None:
    """Raise ``depth_error`` when ``value`` nests deeper than ``MAX_DEPTH``."""
    if too_deep(value, MAX_DEPTH):
        raise depth_error(field)


RENDER_DEPTH = 128
_CLIPPED = f"(nested deeper than {RENDER_DEPTH} levels; not shown)"


def renderable(value: Any, depth: int = RENDER_DEPTH) -> Any:
    """A copy of ``value`` that orjson can always encode: parts below ``depth`` levels become a
    note and integers past 64 bits their decimal text.

    Answers render values stored before the nesting limit existed (orjson refuses more than
    254 levels) and numbers a client sent: one such value must not turn a page into a 500.
    """
    if isinstance(value, int) and not isinstance(value, bool) and not _MIN <= value <= _MAX:
        return str(value)
    if not isinstance(value, dict | list | tuple):
        return value
    if depth <= 0:
        return _CLIPPED
    if isinstance(value, dict):
        return {k: renderable(v, depth - 1) for k, v in value.items()}
    return [renderable(v, depth - 1) for v in value]
