"""CrossEngage outbound events: the events API body and Data Feed JSON rows.

CrossEngage events carry no id of their own, so the dedup key is a hash of the normalized
event (user, name, time, properties): a re-sent request or a re-imported feed adds nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import msgspec

from engagehub import safejson
from engagehub.classify import flag
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent, ParseResult, Rejection
from engagehub.taxonomy import get_taxonomy
from engagehub.timeutil import TimestampError, parse_ts
from engagehub.vendors.base import Context, Signed, Webhook
from engagehub.vendors.common import settle, text

NAME = "crossengage"
KIND = "crossengage"
DESCRIPTION = "CrossEngage outbound events (POST /crossengage/events, Data Feed import)"
MAX_EVENTS = 50
API_VERSION = "1"
AUTH_HEADER = "X-XNG-AuthToken"
VERSION_HEADER = "X-XNG-ApiVersion"


class Body(msgspec.Struct):
    """``POST /crossengage/events`` body."""

    id: str | int
    events: list[msgspec.Raw]


class _Event(msgspec.Struct):
    event: str
    timestamp: str | int | float
    properties: dict[str, Any] | None = None


_body_decoder = msgspec.json.Decoder(Body)
_event_decoder = msgspec.json.Decoder(_Event)


def decode(body: bytes) -> Body:
    """Read the API body; a missing ``id`` or a malformed body is one clear error."""
    try:
        try:
            decoded = _body_decoder.decode(body)
        except RecursionError:  # one event too deep: split the list, refuse that one
            decoded, items = safejson.decode_split(_body_decoder.decode, body, b"events")
            decoded.events = [msgspec.Raw(item) for item in items]
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("`", 2)[-2] if "`" in message else None
        raise PayloadError(f"invalid body: {message}", field=field) from None
    except msgspec.DecodeError as exc:
        raise safejson.malformed(exc, body) from None
    if str(decoded.id).strip() == "":
        raise PayloadError("id (the user id) must not be empty", field="id", value=decoded.id)
    if len(decoded.events) > MAX_EVENTS:
        raise PayloadError(
            f"{len(decoded.events)} events in one request; the limit is {MAX_EVENTS}",
            field="events",
            count=len(decoded.events),
            limit=MAX_EVENTS,
        )
    return decoded


def parse(body: bytes, ctx: Context = Context()) -> ParseResult:
    """One events API request body."""
    return parse_body(decode(body), ctx.region)


def parse_body(body: Body, region: str = "US") -> ParseResult:
    """Normalize the events of one API request; events without event/timestamp are rejected."""
    result = ParseResult()
    seen: Counter[str] = Counter()
    for index, raw in enumerate(body.events):
        data = bytes(raw)
        try:
            if safejson.text_too_deep(data, safejson.MAX_DEPTH):
                raise safejson.depth_error()
            try:
                item = _event_decoder.decode(data)
            except msgspec.ValidationError as exc:
                raise PayloadError(f"invalid event: {exc}", index=index) from None
            except msgspec.DecodeError as exc:
                raise PayloadError(f"malformed event JSON: {exc}", index=index) from None
            event = normalize(
                str(body.id), item.event, item.timestamp, item.properties or {}, data, region
            )
            seen[event.dedup_key] += 1
            if seen[event.dedup_key] > 1:
                event.dedup_key += f":{seen[event.dedup_key]}"
            result.events.append(event)
        except PayloadError as exc:
            exc.details.setdefault("index", index)
            result.rejected.append(Rejection(index=index, error=exc))
    return result


def parse_feed_row(row: object, index: int, region: str = "US") -> IncomingEvent:
    """One Data Feed object: ``{"id", "event", "timestamp", ...properties}``."""
    if not isinstance(row, dict):
        raise PayloadError("feed rows must be JSON objects", index=index, value=str(row)[:100])
    for required in ("id", "event", "timestamp"):
        if row.get(required) in (None, ""):
            raise PayloadError(f"missing mandatory field {required}", field=required, index=index)
    if not isinstance(row["event"], str):
        raise PayloadError("event must be a string", field="event", value=row["event"])
    safejson.check_depth(row)
    props = {k: v for k, v in row.items() if k not in ("id", "event", "timestamp")}
    raw = safejson.dumps(row)
    return normalize(str(row["id"]), row["event"], row["timestamp"], props, raw, region)


def normalize(
    user_id: str,
    name: str,
    timestamp: object,
    properties: dict[str, Any],
    raw: bytes,
    region: str = "US",
) -> IncomingEvent:
    """Map a CrossEngage event onto the taxonomy (the channel property picks the event)."""
    if not name.strip():
        raise PayloadError("event must not be empty", field="event", value=name)
    try:
        event_time = parse_ts(timestamp)
    except TimestampError as exc:
        raise PayloadError(str(exc), field="timestamp", value=str(timestamp)) from None
    taxonomy = get_taxonomy()
    props = taxonomy.rename(NAME, properties)
    channel = taxonomy.channel(props.get("channel"))
    resolved = taxonomy.resolve(NAME, name, channel)
    contact = settle(props, resolved, props.get("phone"), region)
    identity = safejson.dumps([user_id, name, event_time, properties], sort_keys=True)
    event = IncomingEvent(
        dedup_key="h:" + hashlib.sha256(identity).hexdigest()[:40],
        event_time=event_time,
        raw=raw.decode("utf-8", "replace"),
        type="track",
        vendor_event=name,
        event=resolved.event,
        channel=resolved.channel or channel,
        user_id=user_id,
        contact=contact,
        message_id=text(props.get("message_id")),
        campaign_id=text(props.get("campaign_id")),
        properties=props,
    )
    return flag(event)


def token(signed: Signed) -> str | None:
    """The source's write key: CrossEngage sends it in ``X-XNG-AuthToken``."""
    return signed.headers.get(AUTH_HEADER.lower())


def verify(signed: Signed) -> None:
    """The API version CrossEngage calls (checked, like the token, before the body is read)."""
    version = signed.headers.get(VERSION_HEADER.lower())
    if version != API_VERSION:
        raise PayloadError(
            f"{VERSION_HEADER} must be {API_VERSION}", header=VERSION_HEADER, value=version
        )


_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "events"],
    "properties": {
        "id": {"type": "string"},
        "events": {
            "type": "array",
            "maxItems": MAX_EVENTS,
            "items": {
                "type": "object",
                "required": ["event", "timestamp"],
                "properties": {
                    "event": {"type": "string"},
                    "timestamp": {"type": "string"},
                    "properties": {"type": "object"},
                },
            },
        },
    },
}

WEBHOOKS = (
    Webhook(
        name="crossengage_events",
        path="crossengage/events",
        mount="/",
        summary=f"CrossEngage outbound events (at most {MAX_EVENTS} per request)",
        description="Store CrossEngage outbound events for the user ``id``.",
        parse=parse,
        verify=verify,
        signed_body=False,
        write_key=token,
        batch_limit=True,
        status=202,
        count=False,
        tag="ingest: CrossEngage",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}},
            "parameters": [
                {
                    "name": AUTH_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": VERSION_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "enum": [API_VERSION]},
                },
            ],
        },
    ),
)
"""``POST /crossengage/events``: the source is the one owning the ``X-XNG-AuthToken``."""
