"""Operator entries (API, CSV, CLI): one validation, one CSV layout, one way into the log.

CSV columns: ``contact,channel,reason,detail,expires_at`` (header required; only ``contact``
and ``channel`` must have values; ``reason`` defaults to ``manual``). Export writes the same
columns plus ``source`` and ``since``, so an export can be imported elsewhere unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engagehub import csvsafe
from engagehub.consent.model import TYPES, contact_for, contact_forms
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent
from engagehub.suppression.rules import REASONS
from engagehub.suppression.store import entry_event
from engagehub.timeutil import TimestampError, parse_ts

CHANNELS = ("email", "sms", "whatsapp", "push")
IMPORT_COLUMNS = ("contact", "channel", "reason", "detail", "expires_at")
EXPORT_COLUMNS = (*IMPORT_COLUMNS, "source", "since")


@dataclass(slots=True)
class Entry:
    """One validated entry: a contact point in normal form, and (for adds) why and until when."""

    contact: str
    channel: str
    reason: str | None = None
    detail: str | None = None
    expires_at: int | None = None

    def event(self, event_time: int, dedup_key: str) -> IncomingEvent:
        """The entry as its "Suppression Added/Removed" event."""
        return entry_event(
            self.contact,
            self.channel,
            event_time,
            dedup_key,
            self.reason,
            self.detail,
            self.expires_at,
        )


def channel_of(value: object) -> str:
    """``email``, ``SMS``, ``IOS_PUSH``... -> a channel, or an error naming the value."""
    text = str(value or "").strip()
    channel = TYPES.get(text.upper(), text.lower())
    if channel not in CHANNELS:
        raise PayloadError(
            f"unknown channel {value!r}; expected one of {', '.join(CHANNELS)}",
            field="channel",
            value=value,
        )
    return channel


def forms(value: str, channel: str | None, region: str) -> list[str]:
    """Normal forms a lookup value may have (email, phone, or as given for push tokens)."""
    return contact_forms(value, [channel] if channel else CHANNELS, region) or [value]


def validate(item: dict[str, Any], region: str, adding: bool) -> Entry:
    """A raw entry (JSON object or CSV row) as an ``Entry``; the error names the bad field."""
    channel = channel_of(item.get("channel") or item.get("type"))
    contact = contact_for(channel, item.get("contact") or item.get("key"), region)
    if not adding:
        return Entry(contact, channel)
    reason = str(item.get("reason") or "manual").strip().lower()
    if reason not in REASONS:
        raise PayloadError(
            f"unknown reason {reason!r}; expected one of {', '.join(REASONS)}",
            field="reason",
            value=item.get("reason"),
        )
    detail = item.get("detail")
    if detail is not None and (not isinstance(detail, str) or len(detail) > 500):
        raise PayloadError("detail must be text of at most 500 characters", field="detail")
    expires = item.get("expires_at")
    expires_ms = None
    if expires not in (None, ""):
        try:
            expires_ms = parse_ts(expires)
        except TimestampError as exc:
            raise PayloadError(str(exc), field="expires_at", value=expires) from None
    return Entry(contact, channel, reason, detail or None, expires_ms)


def read_csv(text: str, region: str) -> Iterator[tuple[int, Entry | PayloadError]]:
    """(row number, entry or error) for each data row; a bad header fails the whole file."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("contact", "channel") if c not in header]
    if missing:
        raise PayloadError(
            f"the CSV header must name {', '.join(missing)}; expected {', '.join(IMPORT_COLUMNS)}",
            field="header",
            value=",".join(reader.fieldnames or []),
        )
    reader.fieldnames = header
    for number, row in enumerate(reader, start=2):
        cells = {k: csvsafe.unneutralize(v.strip()) for k, v in row.items() if k and v}
        try:
            yield number, validate(cells, region, adding=True)
        except PayloadError as exc:
            yield number, exc


def write_csv(rows: list[dict[str, Any]], header: bool = True) -> str:
    """Entries (as ``store.public`` shows them) as CSV text, formulas neutralised."""
    out = io.StringIO()
    writer = csvsafe.writer(out)
    if header:
        writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r["contact"],
                r["channel"],
                r["reason"],
                r["detail"] or "",
                r["expires_at"] or "",
                r["source"] or "",
                r["since"],
            ]
        )
    return out.getvalue()
