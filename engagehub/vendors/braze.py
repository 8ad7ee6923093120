"""Braze Currents: Avro files (``event_type=.../date=YYYY-MM-DD-HH/*.avro``) and the custom HTTP
connector (``{"events": [...]}``, at most 100 per request, bearer token).

Each record is one event of a ``users.*`` event type; ``id`` is unique per event type, so the
dedup key is ``<event_type>:<id>`` and a file imported twice, or an event delivered both by
file and by HTTP to the same source, is stored once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engagehub import safejson
from engagehub.classify import flag
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent, ParseResult
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors.base import Context, Signed, Webhook
from engagehub.vendors.common import check_bearer, collect, event_time, json_body, settle, text

NAME = "braze"
KIND = "braze"
DESCRIPTION = "Braze Currents (HTTP connector, Avro import); --secret is the bearer token"
MAX_HTTP_EVENTS = 100
_PARTITION = re.compile(r"^(event_type|date)=(.+)$")
_NESTED = ("user", "properties", "device", "app")
_STATUSES = {"opted_in": "subscribed", "opted-in": "subscribed"}
_ACTIONS = {"subscribed": "subscribe", "unsubscribed": "unsubscribe", "help": "help"}


def normalize(event_type: str, record: Mapping[str, Any], region: str = "US") -> IncomingEvent:
    """One Currents record of ``event_type`` as an IncomingEvent."""
    if not isinstance(record, Mapping):
        raise PayloadError("each Braze event must be an object", value=str(record)[:100])
    event_id = text(record.get("id"))
    if event_id is None:
        raise PayloadError("missing id", field="id", event_type=event_type)
    taxonomy = get_taxonomy()
    resolved = taxonomy.resolve(NAME, event_type)
    envelope = taxonomy.vendors[NAME].envelope
    props = taxonomy.rename(
        NAME, {k: v for k, v in record.items() if k not in envelope and v is not None}
    )
    _consent_fields(event_type, props)
    email = props.get("email")
    contact = settle(props, resolved, props.get("phone"), region)
    name = text(props.get("name")) if resolved.event is None else None
    if contact and not isinstance(email, str):
        props["phone"] = contact
    user = text(props.get("user_id")) or text(props.get("braze_id"))
    dispatch = text(props.get("dispatch_id"))
    campaign = text(props.get("campaign_id")) or text(props.get("journey_id"))
    channel = taxonomy.column_channel(resolved, props.get("channel"))
    event = IncomingEvent(
        dedup_key=f"{event_type}:{event_id}",
        event_time=event_time(record.get("time"), "time"),
        raw=safejson.dumps(record).decode(),
        type="track",
        vendor_event=name or event_type,
        event=resolved.event,
        channel=channel,
        user_id=text(props.get("user_id")),
        contact=contact,
        message_id=f"{dispatch}:{user}"
        if dispatch and user
        else (dispatch or text(props.get("send_id"))),
        campaign_id=campaign,
        properties=props,
    )
    return flag(event)


def _consent_fields(event_type: str, props: dict[str, Any]) -> None:
    """Braze's consent values in canonical form (the raw record keeps Braze's own).

    ``subscription_status`` lower-cased (``Opted In`` is subscribed); the documented
    ``subscription_group_id`` names the group when no ``subscription_group_api_id`` does;
    ``channel_identifier`` is the contact of a state change that has no address field; an
    inbound SMS/WhatsApp ``action`` (Subscribed, Unsubscribed) becomes ``keyword_action``.
    """
    status = props.get("subscription_status")
    if isinstance(status, str):
        status = status.strip().lower().replace(" ", "_")
        props["subscription_status"] = _STATUSES.get(status, status)
    if not props.get("subscription_group") and props.get("subscription_group_id"):
        props["subscription_group"] = str(props["subscription_group_id"])
    ident = props.get("channel_identifier")
    if isinstance(ident, str) and ident:
        channel = str(props.get("channel") or "").strip().lower()
        if channel == "email":
            props.setdefault("email", ident)
        elif channel in ("sms", "whatsapp", "rcs"):
            props.setdefault("phone", ident)
    action = props.get("action")
    if isinstance(action, str) and ".InboundReceive" in event_type:
        wanted = _ACTIONS.get(action.strip().casefold())
        if wanted:
            props["keyword_action"] = wanted


def flatten(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """HTTP connector event -> (event_type, flat record); nested user/properties are merged."""
    event_type = event.get("event_type") or event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("missing event_type", field="event_type")
    record = {k: v for k, v in event.items() if k not in (*_NESTED, "event_type", "type")}
    for part in _NESTED:
        nested = event.get(part)
        if isinstance(nested, Mapping):
            for key, value in nested.items():
                record.setdefault(key, value)
    return event_type, record


def verify(signed: Signed) -> None:
    """The source's secret as the connector's bearer token."""
    check_bearer(signed.headers, signed.secret)


def parse(body: bytes, ctx: Context = Context()) -> ParseResult:
    """The custom HTTP connector body; bad events become rejections (Braze retries them singly)."""
    data = json_body(body)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise PayloadError('the body must be {"events": [...]}', field="events")

    def one(item: object) -> IncomingEvent:
        if not isinstance(item, Mapping):
            raise PayloadError("each event must be an object", value=str(item)[:100])
        safejson.check_depth(item)
        event_type, record = flatten(item)
        return normalize(event_type, record, ctx.region)

    return collect(data["events"], one, ref="id")


def partition_of(path: Path) -> tuple[str | None, str | None]:
    """(event_type, date hour) read from ``event_type=`` and ``date=`` path components."""
    found: dict[str, str] = {}
    for part in path.parts:
        match = _PARTITION.match(part)
        if match:
            found[match.group(1)] = match.group(2)
    return found.get("event_type"), found.get("date")


def avro_files(root: Path, since: str | None = None) -> Iterator[tuple[Path, str]]:
    """Currents Avro files under ``root`` (sorted), with their event type; ``since`` filters
    ``date=`` partitions (``YYYY-MM-DD-HH``, inclusive)."""
    candidates = [root] if root.is_file() else sorted(root.rglob("*.avro"))
    for path in candidates:
        event_type, date = partition_of(path)
        if event_type is None:
            raise PayloadError(
                "cannot tell the event type: no event_type=<users...> folder in the path",
                path=str(path),
            )
        if since and date and date < since:
            continue
        yield path, event_type


WEBHOOKS = (
    Webhook(
        name="braze_currents",
        path="braze-currents/{source}",
        summary="Braze Currents custom HTTP connector",
        description="Braze retries a 400 event by event, splits on 413 and retries 429/5xx: the "
        "good events of a partly bad batch are stored before the 400, and their retries are "
        "deduplicated.",
        parse=parse,
        verify=verify,
        signed_body=False,
        max_events=MAX_HTTP_EVENTS,
        partial="refuse",
    ),
)
