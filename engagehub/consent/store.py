"""The consent store: read states and history, and write changes (as events in the log).

Other features use this module only:

- ``status(conn, contact, channel, group="")`` -> ``subscribed`` | ``unsubscribed`` |
  ``did_not_subscribe`` | ``no_status``;
- ``may_send(conn, contact, channel, group=None)`` -> (bool, reason): marketing sends need the
  channel ``subscribed`` and, for a group, the group not opted out;
- ``change_event(change, event_time, dedup_key)`` -> the canonical "Channel/Group Subscription
  Updated" event to append under the built-in source (``builtin_source_id``); the consent
  processor applies it, so every change has one path and one history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from engagehub.consent.model import BUILTIN_SOURCE, NO_STATUS, PENDING, Change
from engagehub.errors import ConfigError
from engagehub.model import IncomingEvent
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks, newest_in, where_in
from engagehub.timeutil import format_ts

STATE_COLUMNS = "contact, channel, group_name, status, event_time, seq, source, reason, own_action"


def builtin_source_id(conn: Connection) -> int:
    """Id of the built-in ``engagehub`` source (created by migration 0200)."""
    found = conn.scalar(
        "SELECT id FROM sources WHERE name = ? AND kind = ?", (BUILTIN_SOURCE, BUILTIN_SOURCE)
    )
    if found is None:
        raise ConfigError("the built-in engagehub source is missing; run engagehub migrate")
    return int(found)


def status(conn: Connection, contact: str, channel: str, group: str = "") -> str:
    """Current state of one subscription; ``no_status`` when nothing was ever recorded."""
    found = conn.scalar(
        "SELECT status FROM subscription_states WHERE contact = ? AND channel = ? "
        "AND group_name = ?",
        (contact, channel, group),
    )
    return str(found) if found else NO_STATUS


def may_send(
    conn: Connection, contact: str, channel: str, group: str | None = None
) -> tuple[bool, str]:
    """Marketing sends need ``subscribed`` on the channel and no opt-out of the group."""
    channel_status = status(conn, contact, channel)
    if channel_status != "subscribed":
        return False, f"{channel} is {channel_status}"
    if group:
        group_status = status(conn, contact, channel, group)
        if group_status in ("unsubscribed", "did_not_subscribe", PENDING):
            return False, f"{channel} group {group!r} is {group_status}"
    return True, "subscribed"


def load_states(
    conn: Connection, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Current rows for (contact, channel, group) keys, in few statements."""
    wanted = list(set(keys))
    contacts = sorted({k[0] for k in wanted})
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for part in chunks(contacts):
        rows = conn.all(
            f"SELECT {STATE_COLUMNS} FROM subscription_states WHERE contact IN ({marks(part)})",
            part,
        )
        for row in rows:
            found[(row["contact"], row["channel"], row["group_name"])] = row
    keep = set(wanted)
    return {k: v for k, v in found.items() if k in keep}


def states_for(conn: Connection, contacts: Iterable[str]) -> list[dict[str, Any]]:
    """Every subscription of these contact points, JSON-ready."""
    rows: list[dict[str, Any]] = []
    # Chunks of sorted contacts, each ordered: the concatenation keeps the one global order.
    for part in chunks(sorted(set(contacts))):
        rows += conn.all(
            f"SELECT {STATE_COLUMNS}, updated_at FROM subscription_states "
            f"WHERE {where_in('contact', part)} ORDER BY contact, channel, group_name",
            part,
        )
    return [
        {
            "contact": r["contact"],
            "channel": r["channel"],
            "group": r["group_name"] or None,
            "status": r["status"],
            "changed_at": format_ts(r["event_time"]),
            "source": r["source"],
            "reason": r["reason"],
            "own_action": bool(r["own_action"]),
        }
        for r in rows
    ]


def history(
    conn: Connection, contacts: str | Sequence[str], limit: int = 200
) -> list[dict[str, Any]]:
    """The audit trail of a contact point, or of a person's several forms, newest first."""
    rows = newest_in(
        conn,
        "SELECT contact, channel, group_name, status, previous_status, event_time, seq, id, "
        "source, reason, outcome, event_id, recorded_at FROM subscription_history",
        "contact",
        contacts,
        ("event_time", "seq", "id"),
        limit,
    )
    return [
        {
            "contact": r["contact"],
            "channel": r["channel"],
            "group": r["group_name"] or None,
            "status": r["status"],
            "previous_status": r["previous_status"] or NO_STATUS,
            "changed_at": format_ts(r["event_time"]),
            "source": r["source"],
            "reason": r["reason"],
            "outcome": r["outcome"],
            "event_id": r["event_id"],
            "seq": r["seq"],
            "recorded_at": format_ts(r["recorded_at"]),
        }
        for r in rows
    ]


def change_event(change: Change, event_time: int, dedup_key: str, **extra: Any) -> IncomingEvent:
    """The canonical event that records ``change`` (to append under the built-in source)."""
    grouped = bool(change.group)
    props: dict[str, Any] = {
        "channel": change.channel,
        "subscription_status": change.status,
        "reason": change.reason,
        "email" if change.channel == "email" else "phone": change.contact,
        **extra,
    }
    if change.channel == "push":
        props.pop("phone")
        props["contact"] = change.contact
    if grouped:
        props["subscription_group"] = change.group
    if change.allow_resubscribe:
        props["allow_resubscribe"] = True
    return IncomingEvent(
        dedup_key=dedup_key,
        event_time=event_time,
        raw=orjson.dumps({"change": props}).decode(),
        type="track",
        vendor_event="Group Subscription Updated" if grouped else "Channel Subscription Updated",
        event="Group Subscription Updated" if grouped else "Channel Subscription Updated",
        channel=change.channel,
        contact=change.contact,
        properties=props,
    )
