"""The shapes that flow between stages: what a vendor parser yields and what the log holds."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from engagehub.errors import EngagehubError

# Namespace of our stable event ids: uuid5(NS, f"{source_id}:{dedup_key}").
EVENT_ID_NAMESPACE = uuid.UUID("6f1c3a52-93b1-4d1e-8f7e-6c1f0f3b9a11")

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias", "delete")
"""Segment call types; ``delete`` is the deletion request Segment forwards to destinations."""


_NS_BYTES = EVENT_ID_NAMESPACE.bytes
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}
"""The RFC 4122 variant digit (``10xx``) for each hex digit the hash put there."""


def event_id_for(source_id: int, dedup_key: str) -> str:
    """Stable public id of an event: ``uuid5(NS, f"{source_id}:{dedup_key}")``, computed from
    the SHA-1 hex digest with the version and variant digits set in place (no UUID object)."""
    h = hashlib.sha1(_NS_BYTES + f"{source_id}:{dedup_key}".encode()).hexdigest()  # noqa: S324 - uuid5 is defined on SHA-1
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


@dataclass(slots=True)
class IncomingEvent:
    """One event as a vendor parser normalized it, before it has a log position."""

    dedup_key: str
    """The vendor's own event id (messageId, sg_event_id...) or a content hash."""
    event_time: int
    """When it happened, UTC ms (clock skew already corrected where the vendor allows)."""
    raw: str
    """The vendor's payload for this one event, verbatim JSON text."""
    type: str = "track"
    vendor_event: str | None = None
    event: str | None = None
    """Canonical event name, or None when the vendor name is not in the taxonomy."""
    channel: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    contact: str | None = None
    """Email address (lowercased) or phone number the event is about."""
    message_id: str | None = None
    campaign_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StoredEvent:
    """One row of the event log."""

    seq: int
    event_id: str
    source_id: int
    dedup_key: str
    type: str
    vendor_event: str | None
    event: str | None
    channel: str | None
    user_id: str | None
    anonymous_id: str | None
    contact: str | None
    message_id: str | None
    campaign_id: str | None
    event_time: int
    received_at: int
    properties: dict[str, Any]
    raw: str


LOG_COLUMNS = tuple(f.name for f in fields(StoredEvent))
"""The columns of ``events`` a StoredEvent is read from, in field order (what every read uses)."""


@dataclass(slots=True)
class Rejection:
    """An event of a batch we refused, with the error that says why."""

    index: int
    error: EngagehubError
    ref: str | None = None
    """The sender's id for that event (messageId...), when it had one."""

    def body(self) -> dict[str, Any]:
        """JSON form used in partial-success replies."""
        out: dict[str, Any] = {"index": self.index, **self.error.body()}
        if self.ref is not None:
            out["ref"] = self.ref
        return out


@dataclass(slots=True)
class ParseResult:
    """What a vendor parser made of one request: good events and refused ones."""

    events: list[IncomingEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    from_raw: bool = False
    """Every event's text fields were decoded from its own ``raw`` JSON (or are the parser's
    names and hashes), whose nesting depth the parser checked: a NUL can only be in ``raw``."""


@dataclass(slots=True)
class AppendResult:
    """What one append did: new rows, duplicates already in the log, the log head after."""

    inserted: int
    duplicates: int
    head: int
