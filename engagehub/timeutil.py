"""Timestamps: every time inside engagehub is an int of UTC milliseconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

# Numbers above this are read as milliseconds, below as seconds (year 5138 in seconds).
_MS_THRESHOLD = 100_000_000_000
MIN_MS = -62_135_596_800_000  # 0001-01-01
MAX_MS = 253_402_300_799_999  # 9999-12-31
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


class TimestampError(ValueError):
    """A value that is not a timestamp we can read."""


def now_ms() -> int:
    """Current UTC time in milliseconds."""
    return time.time_ns() // 1_000_000


def parse_ts(value: object) -> int:
    """Read ISO 8601 (any offset, ``Z``, date only) or epoch seconds/millis into UTC ms."""
    if type(value) is str and value[4:5] == "-":
        try:  # fast path: ISO 8601 as every SDK sends it (not "6227020800000": compact ISO)
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return _in_range((parsed - _EPOCH) // _ONE_MS, value)
    if isinstance(value, bool):
        raise TimestampError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return _from_number(float(value), value)
    if not isinstance(value, str):
        raise TimestampError(f"not a timestamp: {value!r}")
    text = value.strip()
    if not text:
        raise TimestampError("empty timestamp")
    if _looks_numeric(text):
        return _from_number(float(text), value)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise TimestampError(f"not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _in_range((parsed - _EPOCH) // _ONE_MS, value)


def _in_range(ms: int, original: object) -> int:
    """``ms`` when it lies in years 1-9999 UTC (an offset can push a valid text outside)."""
    if not MIN_MS <= ms <= MAX_MS:
        raise TimestampError(f"timestamp out of range (years 1-9999 UTC): {original!r}")
    return ms


def _looks_numeric(text: str) -> bool:
    body = text[1:] if text[0] in "+-" else text
    digits = body.replace(".", "", 1)
    return digits.isascii() and digits.isdigit()  # "¹" and "٣" are digits to isdigit()


def _from_number(number: float, original: object) -> int:
    if number != number or number in (float("inf"), float("-inf")):
        raise TimestampError(f"not a timestamp: {original!r}")
    ms = number if abs(number) >= _MS_THRESHOLD else number * 1000
    if not MIN_MS <= ms <= MAX_MS:
        raise TimestampError(f"timestamp out of range: {original!r}")
    return int(ms)


def format_ts(ms: int | None) -> str | None:
    """UTC milliseconds as ISO 8601 with a ``Z`` suffix."""
    if ms is None:
        return None
    dt = _EPOCH + timedelta(milliseconds=ms)  # exact: no float, any year 1-9999
    return f"{dt.year:04d}-" + dt.strftime("%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_param(value: str | None, name: str) -> int | None:
    """A ``from``/``to``/``since`` parameter of an API, page or command: blank means unset."""
    from engagehub.errors import PayloadError

    if not value:
        return None
    try:
        return parse_ts(value)
    except TimestampError:
        raise PayloadError(
            f"{name} is not a timestamp: {value!r}", field=name, value=value
        ) from None
