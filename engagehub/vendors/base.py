"""The one interface every vendor module implements, listmonk-style: a module is a vendor.

Each ``vendors/<name>.py`` exports:

- ``KIND``: the source kind (``engagehub sources add --kind``), ``DESCRIPTION``: what it receives;
- ``parse(body, ctx) -> ParseResult``: bytes of one request in, events and per-event rejections
  out (pure: no clock, no database, no settings; ``ctx`` says what else the parser may know);
- optionally ``verify(signed)``: raise ``SignatureError`` unless the request is the vendor's;
- ``WEBHOOKS``: the ``/webhooks/...`` routes it receives on (ingest generates them).

``vendors.VENDORS`` is the registry: source kinds, webhook routes, the generated vendor reference
page and the demo's sources all come from it, so a new vendor is one new module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from engagehub.model import ParseResult


@dataclass(frozen=True, slots=True)
class Context:
    """What a parser may know besides the body: when and where it was received, for whom."""

    received_at: int = 0
    """UTC ms; the fallback time of events that carry none (Segment)."""
    region: str = "US"
    """Default region for phone numbers without a country code."""
    query: Mapping[str, str] = field(default_factory=dict)
    """The request's query parameters (Twilio's ``?m=<message id>``)."""
    call: str = "batch"
    """Segment call type of the route (``track``, ``identify``, ... or ``batch``)."""
    max_event_bytes: int = 32 * 1024
    """Largest single event accepted (Segment's 32 KB)."""
    vendor: str | None = None
    """Whose taxonomy the event names follow when a source kind borrows a wire format."""


@dataclass(frozen=True, slots=True)
class Signed:
    """What a verifier sees of a request: nothing is stored unless it checks out."""

    headers: Mapping[str, str]
    body: bytes
    url: str
    """The URL the vendor called, as it saw it (Twilio signs it)."""
    secret: str | None
    """The source's secret (public key, auth token or bearer token)."""
    received_at: int
    tolerance_s: int = 300
    """How old a signed timestamp may be (SendGrid)."""


Parse = Callable[[bytes, Context], ParseResult]
Verify = Callable[[Signed], None]


@dataclass(frozen=True, slots=True)
class Webhook:
    """One ``POST /webhooks/<path>`` route of a vendor, answered by ``ingest.respond``."""

    name: str
    """Route name (the OpenAPI operation id stays stable)."""
    path: str
    """Under ``/webhooks/``, with ``{source}``: e.g. ``"sendgrid/{source}"``."""
    summary: str
    description: str
    parse: Parse
    verify: Verify
    signed_body: bool = True
    """The signature covers the body (read it first); False: a bearer token, checked before
    the body is read (an unauthenticated body is never read)."""
    single: bool = False
    """One event per request: its error is the answer (no ``rejected`` list)."""
    max_events: int | None = None
    """More events in one request is 413 before anything is stored."""
    partial: Literal["accept", "refuse"] = "accept"
    """A partly bad batch: ``accept`` answers 200 listing the rejected events; ``refuse`` stores
    the good ones and answers 400 (Braze retries a 400 event by event)."""
    reply: Callable[[ParseResult, Mapping[str, Any]], str] | None = None
    """Instead of JSON: the body to answer with, from the events and the source's config."""
    reply_media_type: str = "application/json"
    reply_description: str = "Answer"


class Vendor(Protocol):
    """A vendor module (mypy checks each module in ``VENDORS`` against this)."""

    KIND: str
    DESCRIPTION: str
    WEBHOOKS: tuple[Webhook, ...]

    def parse(self, body: bytes, ctx: Context) -> ParseResult:
        """Events and rejections of one request body."""
        ...
