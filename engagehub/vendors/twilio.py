"""Twilio Messaging webhooks: status callbacks and inbound SMS/WhatsApp, with STOP/START keywords.

Signature (``X-Twilio-Signature``): base64 HMAC-SHA1, keyed by the auth token (the source's
secret), of the full public URL followed by every POST parameter name and value sorted by
name; JSON bodies are covered by a ``bodySHA256`` query parameter instead. Like Twilio's own
``RequestValidator`` the URL is tried with and without its default port.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import orjson

from engagehub.contacts import quick_contact
from engagehub.errors import PayloadError, SignatureError
from engagehub.model import IncomingEvent, ParseResult
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors.base import Context, Signed, Webhook
from engagehub.vendors.common import form_body, text

NAME = "twilio"
KIND = "twilio"
DESCRIPTION = "Twilio status callbacks and inbound messages; --secret is the auth token"
SIGNATURE_HEADER = "x-twilio-signature"

# Whole-message keywords (case and surrounding whitespace ignored), as Twilio's opt-out handling.
KEYWORDS: dict[str, str] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        "unsubscribe",
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "subscribe"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}


def signature(token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """What Twilio puts in X-Twilio-Signature for this URL and these parameters."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    mac = hmac.new(token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def _url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    without = urlunsplit(
        parts._replace(netloc=host if parts.port in (None, default) else parts.netloc)
    )
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return list(dict.fromkeys((url, without, with_port)))


@functools.lru_cache(maxsize=1)
def _form(body: bytes) -> tuple[tuple[str, str], ...]:
    """The form body's pairs, decoded once per request: the route verifies then parses the same
    body back to back, so a one-entry memo (the last body) serves both."""
    return tuple(form_body(body))


def verify(signed: Signed) -> None:
    """Raise SignatureError unless Twilio signed this request (form body) for its public URL."""
    check_signature(signed.headers, signed.body, signed.url, signed.secret, _form(signed.body))


def check_signature(
    headers: Mapping[str, str],
    body: bytes,
    url: str,
    secret: str | None,
    params: Sequence[tuple[str, str]],
) -> None:
    """Raise SignatureError unless Twilio signed this request for this public URL."""
    if not secret:
        raise SignatureError("this source has no auth token configured; refusing unsigned events")
    given = headers.get(SIGNATURE_HEADER)
    if not given:
        raise SignatureError("missing X-Twilio-Signature", header="X-Twilio-Signature")
    query = parse_qs(urlsplit(url).query)
    signed_params = params
    if "bodySHA256" in query:
        digest = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(digest, query["bodySHA256"][0]):
            raise SignatureError("body does not match bodySHA256", header="X-Twilio-Signature")
        signed_params = []
    for candidate in _url_variants(url):
        if hmac.compare_digest(signature(secret, candidate, signed_params), given):
            return
    raise SignatureError("invalid Twilio signature", url=url)


_PREFIXED = ("whatsapp", "rcs")
"""Channels Twilio names by an address prefix (``whatsapp:+1...``, ``rcs:+1...``); else SMS."""
OPT_OUT_TYPES = {"STOP": "unsubscribe", "START": "subscribe", "HELP": "help"}
"""Twilio Advanced Opt-Out's ``OptOutType``: the message matched a keyword configured on the
Messaging Service (custom and localised keywords included)."""


def _channel(params: Mapping[str, str]) -> str:
    addresses = (params.get("From", ""), params.get("To", ""), params.get("ChannelPrefix", ""))
    for prefix in _PREFIXED:
        if any(a.lower().startswith(prefix) for a in addresses):
            return prefix
    return "sms"


def _bare(address: str | None) -> str | None:
    if not address:
        return None
    prefix, sep, rest = address.partition(":")
    return rest if sep and prefix.lower() in _PREFIXED else address


def keyword_of(body: str) -> tuple[str | None, str | None]:
    """(keyword, action) when the whole message is a keyword, else (None, None)."""
    word = " ".join(body.split()).upper()
    action = KEYWORDS.get(word)
    return (word, action) if action else (None, None)


def _event(
    params: Mapping[str, str],
    key: str,
    dedup: str,
    received_at: int,
    message_id: str | None,
    phone: str | None,
    region: str,
    extra: dict[str, object],
) -> IncomingEvent:
    taxonomy = get_taxonomy()
    resolved = taxonomy.resolve(NAME, key)
    envelope = taxonomy.vendors[NAME].envelope
    props = taxonomy.rename(NAME, {k: v for k, v in params.items() if k not in envelope})
    sid = text(params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid"))
    props["provider_message_id"] = sid
    for name in ("to", "from"):
        if name in props:
            props[name] = _bare(str(props[name]))
    contact = quick_contact(None, _bare(phone), region)
    if contact:
        props["phone"] = contact
    props.update(extra)
    for k, v in resolved.set.items():
        props.setdefault(k, v)
    return IncomingEvent(
        dedup_key=dedup,
        event_time=received_at,
        raw=orjson.dumps(dict(params)).decode(),
        type="track",
        vendor_event=key,
        event=resolved.event,
        channel=resolved.channel,
        contact=contact,
        message_id=message_id or sid,
        campaign_id=text(params.get("engagehub_campaign_id")),
        properties=props,
    )


def parse_status(
    params: Mapping[str, str], received_at: int, message_id: str | None = None, region: str = "US"
) -> IncomingEvent:
    """One status callback (Twilio sends no event time: we use the time we received it)."""
    status = params.get("MessageStatus") or params.get("SmsStatus")
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not status:
        raise PayloadError("missing MessageStatus", field="MessageStatus")
    if not sid:
        raise PayloadError("missing MessageSid", field="MessageSid")
    key = f"{_channel(params)}:{status.strip().lower()}"
    return _event(
        params,
        key,
        f"{sid}:{status}",
        received_at,
        message_id,
        params.get("To"),
        region,
        {"status": status},
    )


def parse_inbound(params: Mapping[str, str], received_at: int, region: str = "US") -> IncomingEvent:
    """One inbound message; a whole-message keyword is marked with its consent action."""
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    sender = params.get("From")
    if not sid:
        raise PayloadError("missing MessageSid", field="MessageSid")
    if not sender:
        raise PayloadError("missing From", field="From")
    keyword, action = keyword_of(params.get("Body", ""))
    opt_out = OPT_OUT_TYPES.get(params.get("OptOutType", "").strip().upper())
    if opt_out:  # Twilio matched one of the service's keywords: it decides, not our list
        keyword, action = " ".join(params.get("Body", "").split()).upper() or None, opt_out
    extra: dict[str, object] = {}
    if keyword or action:
        extra = {"keyword": keyword, "keyword_action": action}
    key = f"{_channel(params)}:received"
    return _event(params, key, sid, received_at, None, sender, region, extra)


def twiml(reply: str | None) -> str:
    """The TwiML answer to an inbound message: empty, or one reply message."""
    if not reply:
        return '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Message>{escape(reply)}</Message></Response>"
    )


def parse(body: bytes, ctx: Context = Context()) -> ParseResult:
    """A status callback's form body; ``?m=<message id>`` on the callback URL links our message."""
    event = parse_status(dict(_form(body)), ctx.received_at, ctx.query.get("m"), ctx.region)
    return ParseResult([event])


def parse_inbound_body(body: bytes, ctx: Context = Context()) -> ParseResult:
    """An inbound message's form body."""
    return ParseResult([parse_inbound(dict(_form(body)), ctx.received_at, ctx.region)])


def inbound_reply(result: ParseResult, config: Mapping[str, Any]) -> str:
    """TwiML answering an inbound message: the source's configured reply to its keyword or
    keyword action (``config.replies``), else an empty response."""
    replies = config.get("replies", {}) if isinstance(config, Mapping) else {}
    props = result.events[0].properties if result.events else {}
    found = replies.get(props.get("keyword")) or replies.get(props.get("keyword_action"))
    return twiml(found if isinstance(found, str) else None)


WEBHOOKS = (
    Webhook(
        name="twilio_status",
        path="twilio/{source}/status",
        summary="Twilio status callback",
        description="A message status; ``?m=<message id>`` on the callback URL links it to our "
        "message.",
        parse=parse,
        verify=verify,
        single=True,
    ),
    Webhook(
        name="twilio_inbound",
        path="twilio/{source}/inbound",
        summary="Twilio inbound message",
        description="An inbound SMS/WhatsApp; STOP/START/HELP keywords are logged for the consent "
        "processor.",
        parse=parse_inbound_body,
        verify=verify,
        single=True,
        reply=inbound_reply,
        reply_media_type="text/xml",
        reply_description="TwiML",
    ),
)
