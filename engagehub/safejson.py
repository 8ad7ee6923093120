"""JSON encoding that never fails on valid JSON input: integers past 64 bits become strings.

orjson (our encoder) refuses integers outside 64 bits, but JSON allows any size and some
parsers (msgspec, ijson) hand them to us as Python ints. One such value must not crash an import
or poison a group commit; it is kept as its exact decimal text instead.
"""

from __future__ import annotations

from typing import Any

import orjson

_MIN, _MAX = -(2**63), 2**64 - 1


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
