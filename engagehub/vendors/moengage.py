"""MoEngage Streams payloads: ``{"app_name", "source", "moe_request_id", "events": [...]}``.

Authentication is the source's secret as a bearer token (configured as a custom header in
MoEngage's Streams settings); ``event_uuid`` is the dedup key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engagehub import safejson
from engagehub.classify import flag
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent, ParseResult
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors.base import Context, Signed, Webhook
from engagehub.vendors.common import (
    check_bearer,
    collect,
    content_hash,
    event_time,
    json_body,
    settle,
    text,
)

NAME = "moengage"
KIND = "moengage"
DESCRIPTION = "MoEngage Streams; --secret is the bearer token"
_ATTRIBUTE_GROUPS = ("event_attributes", "device_attributes")


def verify(signed: Signed) -> None:
    """The source's secret as a bearer token (a custom header in MoEngage's Streams settings)."""
    check_bearer(signed.headers, signed.secret)


def parse(body: bytes, ctx: Context = Context()) -> ParseResult:
    """Every event of the request; bad ones are rejected one by one."""
    data = json_body(body)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise PayloadError('the body must be {"events": [...], ...}', field="events")
    context = {k: data[k] for k in ("app_name", "source", "moe_request_id") if k in data}
    return collect(data["events"], lambda item: normalize(item, context, ctx.region), "event_uuid")


def normalize(item: object, context: Mapping[str, Any], region: str = "US") -> IncomingEvent:
    """One MoEngage event: attributes flattened into canonical properties."""
    if not isinstance(item, Mapping):
        raise PayloadError("each MoEngage event must be an object", value=str(item)[:100])
    safejson.check_depth(item)
    name = item.get("event_name")
    if not isinstance(name, str) or not name.strip():
        raise PayloadError("missing event_name", field="event_name")
    taxonomy = get_taxonomy()
    raw_props: dict[str, Any] = {}
    for group in _ATTRIBUTE_GROUPS:
        attrs = item.get(group)
        if attrs is not None and not isinstance(attrs, Mapping):
            raise PayloadError(f"{group} must be an object", field=group)
        raw_props.update(attrs or {})
    for key in ("uid", "email_id", "mobile_number", "push_id", "event_code"):
        if item.get(key) not in (None, ""):
            raw_props[key] = item[key]
    props = taxonomy.rename(NAME, raw_props)
    user_attributes = item.get("user_attributes")
    if isinstance(user_attributes, Mapping) and user_attributes:
        props["user_attributes"] = dict(user_attributes)
    props.update({k: v for k, v in context.items() if k not in props})
    resolved = taxonomy.resolve(NAME, name)
    code = item.get("event_code")
    unknown = resolved.event is None and taxonomy.vendors[NAME].rule(name) is None
    if unknown and isinstance(code, str) and code:  # a custom event stays custom
        resolved = taxonomy.resolve(NAME, code)
    contact = settle(props, resolved, props.get("phone"), region)
    user = text(props.get("user_id"))
    campaign = text(props.get("campaign_id"))
    dedup = text(item.get("event_uuid")) or content_hash(
        name, item.get("event_time"), user, raw_props
    )
    event = IncomingEvent(
        dedup_key=dedup,
        event_time=event_time(item.get("event_time"), "event_time"),
        raw=safejson.dumps(item).decode(),
        type="track",
        vendor_event=name,
        event=resolved.event,
        channel=taxonomy.column_channel(resolved, props.get("channel")),
        user_id=user,
        contact=contact,
        message_id=text(props.get("message_id"))
        or (f"{campaign}:{user}" if campaign and user else None),
        campaign_id=campaign,
        properties=props,
    )
    return flag(event)


WEBHOOKS = (
    Webhook(
        name="moengage_events",
        path="moengage/{source}",
        summary="MoEngage",
        description="MoEngage Streams events.",
        parse=parse,
        verify=verify,
        signed_body=False,
    ),
)
