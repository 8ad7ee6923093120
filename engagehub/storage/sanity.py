"""Last checks before an event reaches the log: values no store can keep faithfully are refused.

PostgreSQL text cannot hold NUL characters, our timestamps stop at year 9999 and values nested
deeper than ``safejson.MAX_DEPTH`` cannot be rendered back; one such event
would otherwise fail the group commit it shares with other clients' requests. Parsers already
refuse most of this; these checks make sure nothing slips through from any route.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from engagehub import safejson
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent, ParseResult, Rejection
from engagehub.timeutil import MAX_MS, MIN_MS

TEXT_FIELDS = (
    "dedup_key",
    "type",
    "vendor_event",
    "event",
    "channel",
    "user_id",
    "anonymous_id",
    "contact",
    "message_id",
    "campaign_id",
    "raw",
)


_TEXTS = operator.attrgetter(*TEXT_FIELDS)


def problem(event: IncomingEvent, from_raw: bool = False) -> PayloadError | None:
    """Why this event cannot be stored, or None. ``from_raw`` (``ParseResult.from_raw``): the
    fields are scanned only when ``raw`` holds a NUL or its escape, and the depth not again."""
    raw = event.raw
    if not from_raw or "\\u0000" in raw or "\x00" in raw:
        values = _TEXTS(event)
        if "\x00" in "".join(filter(None, values)):  # one scan; the field if any
            name = next(n for n, v in zip(TEXT_FIELDS, values, strict=True) if v and "\x00" in v)
            return PayloadError(f"{name} contains a NUL character", field=name)
        if not from_raw and safejson.text_too_deep(raw, safejson.MAX_DEPTH):
            return safejson.depth_error()
    if not MIN_MS <= event.event_time <= MAX_MS:
        return PayloadError(
            "event time is outside years 1-9999 (after clock-skew correction)",
            field="event_time",
            value=event.event_time,
        )
    return None


def screen(result: ParseResult) -> ParseResult:
    """Move unstorable events to the rejections, keeping each one's index in the request."""
    raw = result.from_raw
    bad = [(i, p) for i, ev in enumerate(result.events) if (p := problem(ev, raw)) is not None]
    if not bad:
        return result
    taken = {r.index for r in result.rejected}
    indexes = [i for i in range(len(result.events) + len(taken)) if i not in taken]
    rejected = list(result.rejected)
    for position, error in bad:
        index = indexes[position] if position < len(indexes) else position
        error.details.setdefault("index", index)
        rejected.append(Rejection(index, error, result.events[position].dedup_key))
    drop = {position for position, _ in bad}
    kept = [ev for i, ev in enumerate(result.events) if i not in drop]
    return ParseResult(kept, sorted(rejected, key=lambda r: r.index), raw)


def check(events: Sequence[IncomingEvent]) -> None:
    """Raise the first problem of any event (routes that append without a ParseResult)."""
    for index, event in enumerate(events):
        error = problem(event)
        if error is not None:
            error.details.setdefault("index", index)
            raise error
