"""The suppression store: read the list, check a batch of sends, write entries as log events.

Other features use this module only:

- ``active(conn, keys, now)`` -> {(contact, channel): row} of the suppressed contact points
  among ``keys`` (expired soft-bounce entries are not active);
- ``entry_event(...)`` -> the "Suppression Added/Removed" event to append under the built-in
  source; the suppression processor applies it, so every change has one path and one history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from engagehub.model import IncomingEvent
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks, newest_in
from engagehub.suppression.rules import ADDED, REMOVED
from engagehub.timeutil import format_ts

COLUMNS = "contact, channel, reason, detail, source, event_time, seq, expires_at, message_id"


def active(
    conn: Connection, keys: Iterable[tuple[str, str]], now: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """Suppressed contact points among ``keys`` right now, in few statements."""
    wanted = set(keys)
    contacts = sorted({c for c, _ in wanted})
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for part in chunks(contacts):
        rows = conn.all(
            f"SELECT {COLUMNS} FROM suppressions WHERE contact IN ({marks(part)}) "
            "AND (expires_at IS NULL OR expires_at > ?)",
            [*part, now],
        )
        for row in rows:
            key = (row["contact"], row["channel"])
            if key in wanted:
                found[key] = row
    return found


def listing(
    conn: Connection,
    now: int,
    channel: str | None = None,
    reason: str | None = None,
    contacts: list[str] | None = None,
    include_expired: bool = False,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries in (contact, channel) order, filtered, one page after the cursor ``after``."""
    where: list[str] = []
    params: list[Any] = []
    if not include_expired:
        where.append("(expires_at IS NULL OR expires_at > ?)")
        params.append(now)
    for column, value in (("channel", channel), ("reason", reason)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if contacts is not None:
        where.append(f"contact IN ({marks(contacts)})")
        params += contacts
    if after is not None:
        where.append("(contact > ? OR (contact = ? AND channel > ?))")
        params += [after[0], after[0], after[1]]
    sql = f"SELECT {COLUMNS} FROM suppressions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY contact, channel LIMIT ?"
    return [public(r, now) for r in conn.all(sql, [*params, limit])]


EVERY_PAGE = 5000
"""Entries read per statement when a caller wants them all (CSV download, ``suppressions list``)."""


def every(
    conn: Connection,
    now: int,
    channel: str | None = None,
    reason: str | None = None,
    contacts: list[str] | None = None,
    include_expired: bool = False,
) -> list[dict[str, Any]]:
    """Every entry ``listing`` would page through, in the same order."""
    rows: list[dict[str, Any]] = []
    after: tuple[str, str] | None = None
    while True:
        part = listing(conn, now, channel, reason, contacts, include_expired, after, EVERY_PAGE)
        rows += part
        if len(part) < EVERY_PAGE:
            return rows
        after = (str(part[-1]["contact"]), str(part[-1]["channel"]))


def public(row: dict[str, Any], now: int) -> dict[str, Any]:
    """One entry as the API shows it (ISO times, whether it is in force)."""
    expires = row["expires_at"]
    return {
        "contact": row["contact"],
        "channel": row["channel"],
        "reason": row["reason"],
        "detail": row["detail"] or None,
        "source": row["source"] or None,
        "since": format_ts(int(row["event_time"])),
        "expires_at": format_ts(int(expires)) if expires is not None else None,
        "active": expires is None or int(expires) > now,
        "message_id": row["message_id"],
    }


def history(
    conn: Connection, contacts: str | Sequence[str], limit: int = 200
) -> list[dict[str, Any]]:
    """Every signal recorded for a contact point or a person's forms, newest first (audit)."""
    rows = newest_in(
        conn,
        "SELECT contact, channel, seq, kind, reason, detail, source, event_time, expires_at, "
        "message_id, event_id FROM suppression_signals",
        "contact",
        contacts,
        ("event_time", "seq"),
        limit,
    )
    for row in rows:
        row["at"] = format_ts(int(row.pop("event_time")))
        if row["expires_at"] is not None:
            row["expires_at"] = format_ts(int(row["expires_at"]))
    return rows


def entry_event(
    contact: str,
    channel: str,
    event_time: int,
    dedup_key: str,
    reason: str | None = None,
    detail: str | None = None,
    expires_at: int | None = None,
) -> IncomingEvent:
    """An operator's add (``reason`` given) or removal (``reason`` None) as a log event."""
    name = ADDED if reason is not None else REMOVED
    props: dict[str, Any] = {"contact": contact, "channel": channel}
    props["email" if channel == "email" else "phone"] = contact
    if reason is not None:
        props["reason"] = reason
        if detail:
            props["detail"] = detail
        if expires_at is not None:
            props["expires_at"] = expires_at
    return IncomingEvent(
        dedup_key=dedup_key,
        event_time=event_time,
        raw=orjson.dumps({"event": name, "properties": props}).decode(),
        type="track",
        vendor_event=name,
        event=name,
        channel="subscription",
        contact=contact,
        properties=props,
    )
