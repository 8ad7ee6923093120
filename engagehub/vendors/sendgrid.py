"""SendGrid Event Webhook: ECDSA-signed JSON arrays of email events.

Signature (SendGrid's Signed Event Webhook): ECDSA P-256 over SHA-256 of
``timestamp + raw body``; base64 DER signature in ``X-Twilio-Email-Event-Webhook-Signature``,
timestamp in ``X-Twilio-Email-Event-Webhook-Timestamp``; the public key is the base64 DER key the
SendGrid console shows (the source's secret).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from engagehub import safejson
from engagehub.classify import flag
from engagehub.errors import ConfigError, PayloadError, SignatureError
from engagehub.model import IncomingEvent, ParseResult
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors.base import Context, Signed, Webhook
from engagehub.vendors.common import collect, content_hash, event_time, json_body, settle, text

NAME = "sendgrid"
KIND = "sendgrid"
DESCRIPTION = "SendGrid Event Webhook; --secret is the base64 ECDSA public key SendGrid shows"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
_EPOCH = re.compile(r"[0-9]{1,12}")


def public_key(secret: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER form (PEM armour tolerated)."""
    body = "".join(line for line in secret.strip().splitlines() if not line.startswith("-----"))
    try:
        key = load_der_public_key(base64.b64decode(body))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"the SendGrid public key is not base64 DER: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("the SendGrid public key is not an elliptic-curve key")
    return key


def verify(signed: Signed) -> None:
    """Raise SignatureError unless SendGrid signed exactly this body, recently."""
    check_signature(
        signed.headers, signed.body, signed.secret, signed.received_at, signed.tolerance_s
    )


def check_signature(
    headers: Mapping[str, str], body: bytes, secret: str | None, now: int, tolerance_s: int
) -> None:
    """Raise SignatureError unless SendGrid signed exactly this body, recently."""
    if not secret:
        raise SignatureError("this source has no public key configured; refusing unsigned events")
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureError("missing SendGrid signature headers", header=SIGNATURE_HEADER)
    if _EPOCH.fullmatch(timestamp) is None:  # ASCII digits only (str.isdigit takes "²")
        raise SignatureError(
            "invalid signature timestamp: expected Unix seconds (1 to 12 ASCII digits)",
            header=TIMESTAMP_HEADER,
            value=timestamp[:40],
        )
    age = abs(now // 1000 - int(timestamp))
    if tolerance_s and age > tolerance_s:
        raise SignatureError(
            f"signature timestamp is {age} s away from now; the limit is {tolerance_s} s",
            reason="stale",
        )
    try:
        der = base64.b64decode(signature, validate=True)
        public_key(secret).verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("invalid SendGrid signature") from None


def parse(body: bytes, ctx: Context = Context()) -> ParseResult:
    """Every event of the posted array; malformed ones are rejected one by one."""
    data = json_body(body)
    if not isinstance(data, list):
        raise PayloadError("SendGrid posts a JSON array of events", value=type(data).__name__)
    return collect(data, lambda item: normalize(item, ctx.region), ref="sg_event_id")


def lookup_key(item: Mapping[str, Any]) -> str:
    """Mapping key: the event type, refined for blocked bounces and machine opens."""
    name = str(item.get("event", ""))
    if name == "bounce" and item.get("type") == "blocked":
        return "bounce.blocked"
    if name == "open" and item.get("sg_machine_open") in (True, "true", 1):
        return "open.machine"
    return name


def normalize(item: object, region: str = "US") -> IncomingEvent:
    """One SendGrid event as an IncomingEvent."""
    if not isinstance(item, dict):
        raise PayloadError("each SendGrid event must be an object", value=str(item)[:100])
    safejson.check_depth(item)
    name = item.get("event")
    if not isinstance(name, str) or not name:
        raise PayloadError("missing event", field="event")
    taxonomy = get_taxonomy()
    resolved = taxonomy.resolve(NAME, lookup_key(item))
    props = taxonomy.rename(
        NAME, {k: v for k, v in item.items() if k not in ("event", "timestamp")}
    )
    props.pop("sg_event_id", None)
    provider_id = text(props.get("provider_message_id"))
    if provider_id:
        provider_id = provider_id.split(".", 1)[0]  # drop SendGrid's ".filterNNNN..." suffix
        props["provider_message_id"] = provider_id
    if name == "dropped" and "bounce_reason" in props:
        props["drop_reason"] = props.pop("bounce_reason")
    kind = props.pop("type", None)
    if name == "account_status_change" and kind is not None:
        props["account_status"] = kind  # e.g. compliance_suspend
    pool = props.pop("pool", None)
    if isinstance(pool, Mapping):  # {"name": "...", "id": 210} on processed/bounce events
        props["ip_pool"] = pool.get("name")
        props["ip_pool_id"] = pool.get("id")
    contact = settle(props, resolved, None, region)
    dedup = text(item.get("sg_event_id")) or content_hash(item)
    event = IncomingEvent(
        dedup_key=dedup,
        event_time=event_time(item.get("timestamp"), "timestamp"),
        raw=orjson.dumps(item).decode(),
        type="track",
        vendor_event=name,
        event=resolved.event,
        channel=resolved.channel or "email",
        user_id=text(props.get("user_id")),
        contact=contact,
        message_id=text(props.get("message_id")) or provider_id,
        campaign_id=text(props.get("campaign_id")),
        properties=props,
    )
    return flag(event)


WEBHOOKS = (
    Webhook(
        name="sendgrid_events",
        path="sendgrid/{source}",
        summary="SendGrid",
        description="SendGrid Signed Event Webhook.",
        parse=parse,
        verify=verify,
    ),
)
