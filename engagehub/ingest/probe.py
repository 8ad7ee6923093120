"""A test event for any source kind, in that vendor's own wire format, through its own parser.

The dashboard's "send a test event" button builds the body the vendor would POST (a Segment
``track``, a CrossEngage batch, a SendGrid Event Webhook array, a Twilio status callback, a
Braze Currents custom event, a MoEngage Streams batch), parses it with the vendor module that
parses real deliveries and commits it like the ingest route does. Signatures and tokens are not
checked: the server holds write keys and bearer tokens only as digests and SendGrid's public
key cannot sign, so the operator proves those by sending from the vendor's console.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import orjson

from engagehub.model import ParseResult
from engagehub.timeutil import format_ts
from engagehub.vendors import VENDORS, braze, crossengage, moengage, segment, sendgrid, twilio
from engagehub.vendors.base import Context

EVENT = "engagehub Test Event"
"""Name of the custom event where the vendor allows one (Segment, CrossEngage, Braze, MoEngage)."""
ADDRESS = "engagehub-test@example.com"
PHONE = "+14155550100"


def body_of(kind: str, received_ms: int, tag: str | None = None) -> bytes:
    """The request body the vendor would send for one test event (``tag`` makes it unique)."""
    tag = tag or f"{received_ms}-{secrets.token_hex(4)}"
    seconds = received_ms // 1000
    if kind == segment.KIND:
        return orjson.dumps(
            {
                "type": "track",
                "event": EVENT,
                "anonymousId": "engagehub-dashboard",
                "messageId": f"test-{tag}",
                "properties": {"sent_from": "dashboard"},
            }
        )
    if kind == crossengage.KIND:
        return orjson.dumps(
            {
                "id": f"engagehub-test-{tag}",
                "events": [
                    {
                        "event": EVENT,
                        "timestamp": format_ts(received_ms),
                        "properties": {"sent_from": "dashboard"},
                    }
                ],
            }
        )
    if kind == sendgrid.KIND:
        event = {"email": ADDRESS, "timestamp": seconds, "event": "delivered"}
        return orjson.dumps([{**event, "sg_event_id": f"test-{tag}", "sg_message_id": tag}])
    if kind == twilio.KIND:
        return urlencode(
            {
                "MessageSid": f"SMtest{tag}",
                "MessageStatus": "delivered",
                "To": PHONE,
                "From": "+14155550199",
                "ApiVersion": "2010-04-01",
            }
        ).encode()
    if kind == braze.KIND:
        event = {
            "event_type": "users.behaviors.CustomEvent",
            "id": f"test-{tag}",
            "time": seconds,
            "user": {"external_user_id": "engagehub-dashboard"},
            "properties": {"name": EVENT, "custom_properties": {"sent_from": "dashboard"}},
        }
        return orjson.dumps({"events": [event]})
    if kind == moengage.KIND:
        event = {
            "event_name": EVENT,
            "event_code": EVENT,
            "event_uuid": f"test-{tag}",
            "event_time": seconds,
            "uid": "engagehub-dashboard",
            "event_attributes": {"sent_from": "dashboard"},
        }
        return orjson.dumps({"app_name": "engagehub", "source": "MOENGAGE", "events": [event]})
    raise ValueError(f"no test event for source kind {kind!r}")


def parse(
    kind: str, body: bytes, received_ms: int, region: str, max_event_bytes: int
) -> ParseResult:
    """The vendor module's parse of a test body, as its ingest route calls it (the registry's
    uniform ``parse(body, ctx)``; Segment's test event is a ``track`` call)."""
    vendor = VENDORS.get(kind)
    if vendor is None:
        raise ValueError(f"no test event for source kind {kind!r}")
    ctx = Context(received_ms, region, call="track", max_event_bytes=max_event_bytes)
    return vendor.parse(body, ctx)


def sample(kind: str, received_ms: int, region: str, max_event_bytes: int) -> ParseResult:
    """One parsed test event of a source kind."""
    return parse(kind, body_of(kind, received_ms), received_ms, region, max_event_bytes)
