"""The public JSON of one log event: one shape, versioned, for every place an event leaves us.

The events API (``GET /api/events``), ``engagehub events tail``, person exports, the live page,
webhook and NATS destinations all send ``event_json(ev)``; the fields are documented in
docs/concepts/event-json.md. ``SHAPE_VERSION`` is sent next to the events (webhook envelope
``shape_version``, the events API's answer) and bumps only when a field is removed or changes
meaning; adding a field keeps the version. Export files have their own columnar schema
(``export.schema``, versioned in file metadata) and Segment destinations speak Segment's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from engagehub import safejson
from engagehub.model import StoredEvent
from engagehub.timeutil import format_ts

SHAPE_VERSION = 1
"""Version of the shape below."""


def name_of(event: str | None, vendor_event: str | None, call_type: str = "track") -> str:
    """The name an event is exported and forwarded under: canonical, else the vendor's, else
    the call type (an identify without a name)."""
    return event or vendor_event or call_type


def event_json(
    ev: StoredEvent, sources: Mapping[int, str] | None = None, raw: bool = False
) -> dict[str, Any]:
    """The public JSON of ``ev``; ``source`` (its name, from ``sources``: id -> name) and
    ``raw`` (the vendor's payload) are added where the reader is an operator (API, CLI,
    person exports)."""
    out: dict[str, Any] = {
        "id": ev.event_id,
        "event_id": ev.event_id,
        "seq": ev.seq,
        "source_id": ev.source_id,
        "type": ev.type,
        "event": name_of(ev.event, ev.vendor_event, ev.type),
        "canonical": ev.event is not None,
        "canonical_event": ev.event,
        "vendor_event": ev.vendor_event,
        "channel": ev.channel,
        "user_id": ev.user_id,
        "anonymous_id": ev.anonymous_id,
        "contact": ev.contact,
        "message_id": ev.message_id,
        "campaign_id": ev.campaign_id,
        "timestamp": format_ts(ev.event_time),
        "received_at": format_ts(ev.received_at),
        "properties": ev.properties,
    }
    if sources is not None:
        out["source"] = sources.get(ev.source_id, str(ev.source_id))
    if raw:
        out["raw"] = raw_json(ev.raw)
    return out


def raw_json(text: str) -> Any:
    """The stored vendor payload as JSON, or verbatim text when it is not JSON or nests deeper
    than we render."""
    if safejson.text_too_deep(text, safejson.MAX_DEPTH):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
