"""Segment HTTP Tracking API (``/v1/batch``, ``/v1/track``...): decode, validate, normalize.

The official Segment libraries work unchanged with their host set to this server: the write key
comes as the HTTP Basic user name or as ``writeKey`` in the body; ``200 {"success": true}`` is
sent only after the events are committed. analytics.js uses the short paths ``/v1/t|i|p|s|g|a``
and ``/v1/b`` and sends its JSON as ``text/plain`` (a CORS-simple type): the Content-Type is
never required nor checked, the body is always read as JSON.

Each event keeps its bytes verbatim (``msgspec.Raw``); bad events are rejected one by one so
the rest of a batch is stored. Clock skew is corrected as Segment documents it:
``timestamp = receivedAt - (sentAt - originalTimestamp)``.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from typing import Any

import msgspec

from engagehub import safejson
from engagehub.classify import flag
from engagehub.contacts import quick_contact
from engagehub.errors import PayloadError, PayloadTooLarge
from engagehub.model import EVENT_TYPES, IncomingEvent, ParseResult, Rejection
from engagehub.taxonomy import Taxonomy, get_taxonomy
from engagehub.timeutil import TimestampError, parse_ts
from engagehub.vendors.base import Context, Signed, Webhook
from engagehub.vendors.common import basic_auth_user, text

NAME = "segment"
KIND = "segment"
DESCRIPTION = "Segment-compatible clients (Tracking API /v1/*); write key in body or Basic auth"

Id = str | int
Time = str | int | float


class Envelope(msgspec.Struct):
    """The body of ``/v1/batch`` (single-call bodies are wrapped into one)."""

    batch: list[msgspec.Raw]
    sentAt: Time | None = None
    writeKey: str | None = None
    context: dict[str, Any] | None = None


class _Single(msgspec.Struct):
    writeKey: str | None = None
    sentAt: Time | None = None


class _Context(msgspec.Struct):
    """Only the part of ``context`` parsing needs; the rest stays in ``raw`` undecoded."""

    traits: dict[str, Any] | None = None


class SegmentEvent(msgspec.Struct):
    """The fields of a Segment call that engagehub reads; everything else stays in ``raw``."""

    type: str | None = None
    event: str | None = None
    name: str | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: Id | None = None
    timestamp: Time | None = None
    originalTimestamp: Time | None = None
    sentAt: Time | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: _Context | list[Any] | None = None
    """An object; Segment's ``delete`` calls send ``[]``."""
    integrations: dict[str, Any] | list[Any] | None = None
    groupId: Id | None = None
    previousId: Id | None = None
    category: str | None = None


_envelope_decoder = msgspec.json.Decoder(Envelope)
_single_decoder = msgspec.json.Decoder(_Single)
_event_decoder = msgspec.json.Decoder(SegmentEvent)


def decode(body: bytes, call: str) -> Envelope:
    """Read a request body; ``call`` is ``batch`` or one of the six call types."""
    try:
        if call == "batch":
            try:
                return _envelope_decoder.decode(body)
            except RecursionError:  # one event too deep: split the batch, refuse that one
                envelope, items = safejson.decode_split(_envelope_decoder.decode, body, b"batch")
                envelope.batch = [msgspec.Raw(item) for item in items]
                return envelope
        single = _single_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"invalid body: {exc}", path=_path(exc)) from None
    except msgspec.DecodeError as exc:
        raise safejson.malformed(exc, body) from None
    except RecursionError:
        raise safejson.depth_error("body") from None
    return Envelope(batch=[msgspec.Raw(body)], sentAt=single.sentAt, writeKey=single.writeKey)


def _path(exc: msgspec.ValidationError) -> str | None:
    message = str(exc)
    return message.rsplit("at `", 1)[1].rstrip("`") if "at `" in message else None


@functools.lru_cache(maxsize=1)
def _decoded(body: bytes, call: str) -> Envelope:
    """``decode``, once per request: the route reads the write key, then parses, from the same
    body back to back (a one-entry memo; parsing never changes an envelope)."""
    return decode(body, call)


def write_key(call: str, signed: Signed) -> str | None:
    """The request's write key: the Basic user name, else the body's ``writeKey`` (a malformed
    body is refused before the key is looked at, as Segment does)."""
    envelope = _decoded(signed.body, call)
    return basic_auth_user(signed.headers) or envelope.writeKey


def parse(body: bytes, ctx: Context = Context()) -> ParseResult:
    """One Tracking API request body of the route's call type (``ctx.call``)."""
    return parse_envelope(
        _decoded(body, ctx.call),
        ctx.received_at,
        ctx.call,
        ctx.max_event_bytes,
        ctx.region,
        ctx.vendor or NAME,
    )


def parse_envelope(
    envelope: Envelope,
    received_at: int,
    call: str = "batch",
    max_event_bytes: int = 32 * 1024,
    region: str = "US",
    vendor: str = NAME,
) -> ParseResult:
    """Normalize every event of the envelope; invalid ones become rejections with the reason.

    ``vendor`` names the taxonomy the event names come in: ``moengage`` for MoEngage's Segment
    integration (MoEngage names and properties first, then Segment's resolution)."""
    result = ParseResult(from_raw=True)  # each event's texts come from its raw; depth checked
    seen: Counter[bytes] = Counter()
    batch_sent = _batch_sent_at(envelope)
    taxonomy = get_taxonomy()
    append = result.events.append
    for index, raw in enumerate(envelope.batch):
        data = bytes(raw)
        try:
            if len(data) > max_event_bytes:
                raise PayloadTooLarge(
                    f"event is {len(data)} bytes; the limit is {max_event_bytes}",
                    index=index,
                    size=len(data),
                    limit=max_event_bytes,
                )
            if safejson.text_too_deep(data, safejson.MAX_DEPTH):
                raise safejson.depth_error()
            try:
                item = _event_decoder.decode(data)
            except msgspec.ValidationError as exc:
                raise PayloadError(f"invalid event: {exc}", path=_path(exc)) from None
            except msgspec.DecodeError as exc:
                raise PayloadError(f"malformed event JSON: {exc}") from None
            dedup = _dedup_key(item, data, seen)
            append(
                _normalize(
                    item, data, call, batch_sent, received_at, dedup, region, vendor, taxonomy
                )
            )
        except (PayloadError, PayloadTooLarge) as exc:
            exc.details.setdefault("index", index)
            ref = _message_id_of(data)
            result.rejected.append(Rejection(index=index, error=exc, ref=ref))
    return result


def _batch_sent_at(envelope: Envelope) -> int | None:
    if envelope.sentAt is None:
        return None
    try:
        return parse_ts(envelope.sentAt)
    except TimestampError as exc:
        raise PayloadError(str(exc), field="sentAt", value=str(envelope.sentAt)) from None


def _message_id_of(data: bytes) -> str | None:
    try:
        found = msgspec.json.decode(data, type=dict[str, Any]).get("messageId")
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return str(found) if found is not None else None


def _dedup_key(item: SegmentEvent, data: bytes, seen: Counter[bytes]) -> str:
    """``messageId`` when the client set one (its retries reuse it), else a content hash."""
    given = item.messageId
    if type(given) is str and given:
        return given
    if given is not None and str(given):
        return str(given)
    seen[data] += 1
    return f"h:{hashlib.sha256(data).hexdigest()[:40]}:{seen[data]}"


def _normalize(
    item: SegmentEvent,
    data: bytes,
    call: str,
    batch_sent_at: int | None,
    received_at: int,
    dedup: str,
    region: str,
    vendor: str = NAME,
    taxonomy: Taxonomy | None = None,
) -> IncomingEvent:
    kind = item.type if call == "batch" else call
    if kind is None:
        raise PayloadError("missing field type", field="type")
    if kind not in EVENT_TYPES:
        raise PayloadError(
            f"unknown type {kind!r}; expected one of {', '.join(EVENT_TYPES)}",
            field="type",
            value=kind,
        )
    user_id = _id(item.userId)
    anonymous_id = _id(item.anonymousId)
    if user_id is None and anonymous_id is None:
        raise PayloadError("userId or anonymousId is required", field="userId")
    taxonomy = taxonomy or get_taxonomy()
    properties: dict[str, Any]
    vendor_event: str | None = None
    resolved = None
    if kind == "track":
        if not item.event or not item.event.strip():
            raise PayloadError("track calls need a non-empty event name", field="event")
        vendor_event = item.event
        resolved = taxonomy.resolve(vendor, vendor_event)
        if resolved.event is None and vendor != NAME:
            resolved = taxonomy.resolve(NAME, vendor_event)
        properties = taxonomy.rename(vendor, item.properties or {}, owned=True)
        if resolved.set:
            for key, value in resolved.set.items():
                properties.setdefault(key, value)
        if resolved.event == "Email Unsubscribed" and _list_of(properties):
            resolved = taxonomy.resolve(NAME, "Email Group Unsubscribed")
    elif kind in ("identify", "group"):
        traits = item.traits
        if traits is None and kind == "identify" and isinstance(item.context, _Context):
            traits = item.context.traits  # RudderStack's identify sends traits only there
        properties = dict(traits or {})
        if kind == "group":
            if text(item.groupId) is None:
                raise PayloadError("group calls need groupId", field="groupId")
            properties["group_id"] = text(item.groupId)
    elif kind == "alias":
        if text(item.previousId) is None or user_id is None:
            raise PayloadError("alias calls need previousId and userId", field="previousId")
        properties = {"previous_id": text(item.previousId)}
    elif kind == "delete":  # a deletion regulation Segment forwards: "User Deleted"
        resolved = taxonomy.resolve(vendor, "type:delete")
        properties = {}
    else:  # page, screen
        vendor_event = item.name
        properties = dict(item.properties or {})
        if item.category is not None:
            properties.setdefault("category", item.category)
    event = IncomingEvent(  # positional, in field order: one per event of every batch
        dedup,
        _event_time(item, batch_sent_at, received_at),
        data.decode("utf-8", "replace"),
        kind,
        vendor_event,
        resolved.event if resolved else None,
        taxonomy.column_channel(resolved, properties.get("channel")) if resolved else None,
        user_id,
        anonymous_id,
        _contact(item, properties, region),
        _id(properties.get("message_id")),
        _id(properties.get("campaign_id")),
        properties,
    )
    return flag(event)


def _id(value: object) -> str | None:
    """``common.text``, the usual case (a non-empty string) first: called ~4 times an event."""
    return value if type(value) is str and value else text(value)


def _list_of(properties: dict[str, Any]) -> str | None:
    """The list an "Unsubscribed" names (Segment's Email spec: optional ``list_id``, else
    ``list_name``), kept as its ``subscription_group``: the person left that list, not every
    email. None when it names none (a global unsubscribe)."""
    group = text(properties.get("subscription_group"))
    group = group or text(properties.get("list_id")) or text(properties.get("list_name"))
    if group is not None:
        properties["subscription_group"] = group
    return group


def _contact(item: SegmentEvent, properties: dict[str, Any], region: str) -> str | None:
    email = properties.get("email")
    phone = properties.get("phone")
    context = item.context if isinstance(item.context, _Context) else None
    if (email is None or phone is None) and context is not None and context.traits:
        email = email or context.traits.get("email")
        phone = phone or context.traits.get("phone")
    return quick_contact(email, phone, region)


def _event_time(item: SegmentEvent, batch_sent_at: int | None, received_at: int) -> int:
    """Segment's rule: correct the client clock with sentAt when both times are known."""
    original = item.originalTimestamp if item.originalTimestamp is not None else item.timestamp
    if original is None:
        return received_at
    try:
        original_ms = parse_ts(original)
    except TimestampError as exc:
        # Segment's own delete calls carry a Go-formatted originalTimestamp ("... +0000 UTC
        # m=+70366.29"): when it cannot be read, the server-side timestamp stands.
        if item.timestamp is not None and item.timestamp is not original:
            try:
                return parse_ts(item.timestamp)
            except TimestampError:
                pass
        raise PayloadError(str(exc), field="timestamp", value=str(original)) from None
    sent = batch_sent_at
    if item.sentAt is not None:
        try:
            sent = parse_ts(item.sentAt)
        except TimestampError as exc:
            raise PayloadError(str(exc), field="sentAt", value=str(item.sentAt)) from None
    return original_ms if sent is None else received_at - (sent - original_ms)


CALLS = ("batch", "track", "identify", "page", "screen", "group", "alias")
SHORT = {
    "b": "batch",
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
"""analytics.js (browser) posts to one-letter paths: ``/v1/t`` is ``/v1/track`` and so on."""

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(CALLS[1:])},
        "event": {"type": "string"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
    },
}
_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": _EVENT_SCHEMA},
        "writeKey": {"type": "string"},
        "sentAt": {"type": "string", "format": "date-time"},
    },
}


def _route(path: str, call: str) -> Webhook:
    short = "" if path == call else " (analytics.js short path)"
    schema = _BATCH_SCHEMA if call == "batch" else _EVENT_SCHEMA
    return Webhook(
        name=f"segment_{path}",
        path=path,
        mount="/v1/",
        summary=f"Segment {call} call{short}",
        description=f"A Segment {call} call; the write key is the Basic user name or ``writeKey``.",
        parse=parse,
        write_key=functools.partial(write_key, call),
        # MoEngage's Segment integration sends Segment calls with MoEngage's names to a moengage
        # source's write key (moengage-source.md): they are read with MoEngage's taxonomy.
        kinds=("moengage",),
        call=call,
        single=call != "batch",
        browser=True,
        batch_limit=True,
        count=False,
        tag="ingest: Segment",
        answer_description="Committed. `rejected` lists events of the batch that were refused.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {t: {"schema": schema} for t in ("application/json", "text/plain")},
            }
        },
    )


WEBHOOKS = tuple(_route(c, c) for c in CALLS) + tuple(_route(p, c) for p, c in SHORT.items())
"""The Tracking API routes, ``POST /v1/<call>`` and analytics.js's short paths."""
