"""The analytics processor: message lifecycles, campaign rollups and conversions from the log.

Everything changes in the processor's transaction, together with its cursor. Each message row
remembers the last log position applied to it, so re-applying a window after a crash is a no-op;
rollups change only by the difference between what a message contributed before and after.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from engagehub.analytics import goals as goal_store
from engagehub.analytics.lifecycle import (
    MILESTONES,
    Key,
    Message,
    anchor,
    apply_event,
    contributions,
    new_message,
    status,
)
from engagehub.model import StoredEvent
from engagehub.storage.base import Connection
from engagehub.taxonomy import MESSAGE_CHANNELS, get_taxonomy
from engagehub.timeutil import now_ms

_MESSAGE_CHANNELS = MESSAGE_CHANNELS | {"message"}
_COLUMNS = (
    "message_id",
    "campaign_id",
    "campaign_name",
    "channel",
    "variation",
    "step",
    "user_id",
    "contact",
    *(f"first_{m}" for m in MILESTONES),
    "converted_at",
    "goal_id",
    "status",
    "state",
    "last_seq",
)
_CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def load_messages(conn: Connection, ids: Iterable[str]) -> dict[str, Message]:
    """Lifecycle rows by message id (missing ids are absent)."""
    found: dict[str, Message] = {}
    for part in _chunks(sorted(set(ids))):
        for row in conn.all(
            f"SELECT {', '.join(_COLUMNS)} FROM analytics_messages WHERE message_id IN "
            f"({', '.join('?' * len(part))})",
            part,
        ):
            row["state"] = orjson.loads(row["state"])
            found[row["message_id"]] = row
    return found


class AnalyticsProcessor:
    """Derived tables ``analytics_*`` (lifecycles, rollups, campaign totals, goal events)."""

    name = "analytics"
    where: str | None = "message_id IS NOT NULL OR type = 'track'"
    payload = True

    def __init__(self) -> None:
        self.taxonomy = get_taxonomy()

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Fold message events into lifecycles, keep goal events, settle what changed."""
        matcher = goal_store.Matcher(goal_store.load(conn))
        message_events: list[tuple[StoredEvent, str]] = []
        goal_rows: list[tuple[Any, ...]] = []
        for ev in events:
            canonical = self.taxonomy.events.get(ev.event) if ev.event else None
            if ev.message_id and canonical and canonical.channel in _MESSAGE_CHANNELS:
                message_events.append((ev, canonical.action))
            if ev.type == "track":
                goal_rows.extend(matcher.rows(ev))
        if not message_events and not goal_rows:
            return
        msgs = load_messages(conn, {ev.message_id for ev, _ in message_events if ev.message_id})
        if goal_rows:
            goal_store.store_rows(conn, goal_rows)
            msgs.update(load_messages(conn, recipients_of(conn, goal_rows, msgs)))
        before = {mid: contributions(m) for mid, m in msgs.items()}
        touched: set[str] = {str(r[5]) for r in goal_rows if r[5]} & set(msgs)
        touched |= set(before) if goal_rows else set()
        for ev, action in message_events:
            mid = str(ev.message_id)
            msg = msgs.get(mid)
            if msg is None:
                msg = msgs[mid] = new_message(mid)
                before[mid] = Counter()
            if ev.seq <= msg["last_seq"]:
                continue
            apply_event(msg, ev, action)
            touched.add(mid)
        settle(conn, {m: msgs[m] for m in touched}, before, matcher)

    def reset(self, conn: Connection) -> None:
        """Forget lifecycles, rollups and goal events (goal definitions stay)."""
        for table in (
            "analytics_messages",
            "analytics_rollups",
            "analytics_campaigns",
            "analytics_campaign_names",
            "analytics_goal_events",
        ):
            conn.execute(f"DELETE FROM {table}")


def _see_campaigns(conn: Connection, msgs: Iterable[Message]) -> None:
    """Campaign names and first/last event times (set min/max: arrival order cannot matter)."""
    seen: dict[str, list[Any]] = {}
    for msg in msgs:
        span = msg["state"].get("span")
        if not msg["campaign_id"] or not span:
            continue
        entry = seen.setdefault(msg["campaign_id"], [msg["campaign_name"], *span])
        if msg["campaign_name"] and (entry[0] is None or msg["campaign_name"] < entry[0]):
            entry[0] = msg["campaign_name"]
        entry[1], entry[2] = min(entry[1], span[0]), max(entry[2], span[1])
    conn.executemany(
        "INSERT INTO analytics_campaign_names (campaign_id, name, first_seen, last_seen) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET "
        "name = CASE WHEN analytics_campaign_names.name IS NULL "
        "OR excluded.name < analytics_campaign_names.name THEN excluded.name "
        "ELSE analytics_campaign_names.name END, "
        f"first_seen = {conn.least}(analytics_campaign_names.first_seen, excluded.first_seen), "
        f"last_seen = {conn.greatest}(analytics_campaign_names.last_seen, excluded.last_seen)",
        [(c, *v) for c, v in sorted(seen.items())],
    )


def recipients_of(
    conn: Connection, goal_rows: list[tuple[Any, ...]], known: dict[str, Message]
) -> set[str]:
    """Messages of the goal events' campaigns sent to the same people (user id or contact)."""
    ids: set[str] = {str(r[5]) for r in goal_rows if r[5]}
    by_campaign: dict[str, tuple[set[str], set[str]]] = {}
    for r in goal_rows:
        users, contacts = by_campaign.setdefault(str(r[2]), (set(), set()))
        if r[3]:
            users.add(str(r[3]))
        if r[4]:
            contacts.add(str(r[4]))
    for campaign, (users, contacts) in by_campaign.items():
        for column, values in (("user_id", users), ("contact", contacts)):
            for part in _chunks(sorted(values)):
                ids.update(
                    str(mid)
                    for (mid,) in conn.execute(
                        f"SELECT message_id FROM analytics_messages WHERE campaign_id = ? "
                        f"AND {column} IN ({', '.join('?' * len(part))})",
                        [campaign, *part],
                    ).fetchall()
                )
    return ids - set(known)


def _goal_events(conn: Connection, msgs: Sequence[Message]) -> dict[str, list[dict[str, Any]]]:
    """Goal events per campaign for the recipients of these messages."""
    out: dict[str, list[dict[str, Any]]] = {}
    by_campaign: dict[str, tuple[set[str], set[str]]] = {}
    for m in msgs:
        users, contacts = by_campaign.setdefault(m["campaign_id"], (set(), set()))
        if m["user_id"]:
            users.add(m["user_id"])
        if m["contact"]:
            contacts.add(m["contact"])
        users.add("\x00" + m["message_id"])
    for campaign, (users, contacts) in by_campaign.items():
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        wanted = [("user_id", sorted(u for u in users if not u.startswith("\x00")))]
        wanted.append(("contact", sorted(contacts)))
        wanted.append(("message_id", sorted(u[1:] for u in users if u.startswith("\x00"))))
        for column, values in wanted:
            for part in _chunks(values):
                for r in conn.all(
                    "SELECT goal_id, seq, user_id, contact, message_id, event_time "
                    f"FROM analytics_goal_events WHERE campaign_id = ? AND {column} IN "
                    f"({', '.join('?' * len(part))})",
                    [campaign, *part],
                ):
                    rows[(r["goal_id"], r["seq"])] = r
        out[campaign] = list(rows.values())
    return out


def settle(
    conn: Connection,
    msgs: dict[str, Message],
    before: dict[str, Counter[Key]],
    matcher: goal_store.Matcher,
) -> None:
    """Recompute conversions and statuses, write rows, and move rollups by the difference."""
    if not msgs:
        return
    goal_campaigns = matcher.campaigns | _vendor_campaigns(conn, msgs.values())
    candidates = [m for m in msgs.values() if m["campaign_id"] in goal_campaigns]
    events = _goal_events(conn, candidates) if candidates else {}
    delta: Counter[Key] = Counter()
    for mid, msg in msgs.items():
        if msg["campaign_id"] in goal_campaigns:
            mine = [
                e
                for e in events.get(msg["campaign_id"], [])
                if (msg["user_id"] and e["user_id"] == msg["user_id"])
                or (msg["contact"] and e["contact"] == msg["contact"])
                or e["message_id"] == mid
            ]
            msg["converted_at"], msg["goal_id"] = goal_store.conversion(
                msg, anchor(msg), mine, matcher.windows
            )
        else:
            msg["converted_at"], msg["goal_id"] = None, None
        msg["status"] = status(msg)
        after = contributions(msg)
        delta.update(after)
        delta.subtract(before.get(mid, Counter()))
    _write_messages(conn, list(msgs.values()))
    _see_campaigns(conn, msgs.values())
    _write_rollups(conn, {k: n for k, n in delta.items() if n})


def _vendor_campaigns(conn: Connection, msgs: Iterable[Message]) -> set[str]:
    campaigns = sorted({m["campaign_id"] for m in msgs if m["campaign_id"]})
    found: set[str] = set()
    for part in _chunks(campaigns):
        found.update(
            str(c)
            for (c,) in conn.execute(
                "SELECT DISTINCT campaign_id FROM analytics_goal_events WHERE goal_id = 0 "
                f"AND campaign_id IN ({', '.join('?' * len(part))})",
                part,
            ).fetchall()
        )
    return found


def _write_messages(conn: Connection, msgs: list[Message]) -> None:
    columns = [*_COLUMNS, "updated_at"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    now = now_ms()
    conn.executemany(
        f"INSERT INTO analytics_messages ({', '.join(columns)}) VALUES "
        f"({', '.join('?' * len(columns))}) ON CONFLICT (message_id) DO UPDATE SET {updates}",
        [
            [*(orjson.dumps(m[c]).decode() if c == "state" else m[c] for c in _COLUMNS), now]
            for m in msgs
        ],
    )


def _write_rollups(conn: Connection, delta: dict[Key, int]) -> None:
    if not delta:
        return
    conn.executemany(
        "INSERT INTO analytics_rollups (campaign_id, channel, variation, step, bucket, metric, "
        "detail, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign_id, bucket, channel, "
        "variation, step, metric, detail) DO UPDATE SET n = analytics_rollups.n + excluded.n",
        [(*k, n) for k, n in sorted(delta.items())],
    )
    totals: Counter[tuple[str, str]] = Counter()
    for k, n in delta.items():
        if not k[6]:
            totals[(k[0], k[5])] += n
    conn.executemany(
        "INSERT INTO analytics_campaigns (campaign_id, metric, n) VALUES (?, ?, ?) "
        "ON CONFLICT (campaign_id, metric) DO UPDATE SET n = analytics_campaigns.n + excluded.n",
        [(*k, n) for k, n in sorted(totals.items()) if n],
    )
