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
    merge,
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
        aliases, fresh = _aliases(conn, message_events)
        targets = {aliases.get(str(ev.message_id), str(ev.message_id)) for ev, _ in message_events}
        msgs = load_messages(conn, targets | set(fresh))
        if goal_rows:
            goal_store.store_rows(conn, goal_rows)
            msgs.update(load_messages(conn, recipients_of(conn, goal_rows, msgs)))
        before = {mid: contributions(m) for mid, m in msgs.items()}
        touched: set[str] = {str(r[5]) for r in goal_rows if r[5]} & set(msgs)
        touched |= set(before) if goal_rows else set()
        gone: set[str] = set()
        for alias, target in fresh.items():
            old = msgs.pop(alias, None)
            if old is None:
                continue
            msg = msgs.get(target)
            if msg is None:
                msg = msgs[target] = new_message(target)
                before[target] = Counter()
            merge(msg, old)
            touched.add(target)
            touched.discard(alias)
            gone.add(alias)
        for ev, action in message_events:
            mid = aliases.get(str(ev.message_id), str(ev.message_id))
            msg = msgs.get(mid)
            if msg is None:
                msg = msgs[mid] = new_message(mid)
                before[mid] = Counter()
            if ev.seq <= msg["last_seq"]:
                continue
            apply_event(msg, ev, action)
            touched.add(mid)
        settle(conn, {m: msgs[m] for m in touched}, before, matcher, gone)

    def reset(self, conn: Connection) -> None:
        """Forget lifecycles, rollups and goal events (goal definitions stay)."""
        for table in (
            "analytics_messages",
            "analytics_rollups",
            "analytics_campaigns",
            "analytics_campaign_names",
            "analytics_goal_events",
            "analytics_message_aliases",
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


def _provider(ev: StoredEvent) -> str | None:
    value = ev.properties.get("provider_message_id")
    return str(value) if value and str(value) != ev.message_id else None


def _aliases(
    conn: Connection, events: Sequence[tuple[StoredEvent, str]]
) -> tuple[dict[str, str], dict[str, str]]:
    """(alias -> message id for this batch, aliases learnt now); the first link learnt wins."""
    keys = {str(ev.message_id) for ev, _ in events} | {
        p for ev, _ in events if (p := _provider(ev))
    }
    known = {
        str(r["alias"]): str(r["message_id"])
        for r in _where_in(conn, "alias, message_id", "analytics_message_aliases", {"alias": keys})
    }
    fresh: dict[str, str] = {}
    for ev, _ in events:
        provider = _provider(ev)
        mid = str(ev.message_id)
        if provider and provider not in known and mid not in known:
            known[provider] = fresh[provider] = mid
    conn.executemany(
        "INSERT INTO analytics_message_aliases (alias, message_id) VALUES (?, ?) "
        "ON CONFLICT (alias) DO NOTHING",
        sorted(fresh.items()),
    )
    return known, fresh


def _where_in(
    conn: Connection, select: str, table: str, keys: dict[str, set[str]]
) -> list[dict[str, Any]]:
    """Rows of ``table`` whose column is in each key set (few statements, indexed columns)."""
    rows: list[dict[str, Any]] = []
    for column, values in keys.items():
        for part in _chunks(sorted(values)):
            rows.extend(
                conn.all(
                    f"SELECT {select} FROM {table} WHERE {column} IN "
                    f"({', '.join('?' * len(part))})",
                    part,
                )
            )
    return rows


def recipients_of(
    conn: Connection, goal_rows: list[tuple[Any, ...]], known: dict[str, Message]
) -> set[str]:
    """Messages of the goal events' campaigns sent to the same people (user id or contact)."""
    ids: set[str] = {str(r[5]) for r in goal_rows if r[5]}
    users = {(str(r[2]), str(r[3])) for r in goal_rows if r[3]}
    contacts = {(str(r[2]), str(r[4])) for r in goal_rows if r[4]}
    for r in _where_in(
        conn,
        "message_id, campaign_id, user_id, contact",
        "analytics_messages",
        {"user_id": {u for _, u in users}, "contact": {c for _, c in contacts}},
    ):
        if (r["campaign_id"], r["user_id"]) in users or (
            r["campaign_id"],
            r["contact"],
        ) in contacts:
            ids.add(str(r["message_id"]))
    return ids - set(known)


def _goal_events(conn: Connection, msgs: Sequence[Message]) -> dict[str, list[dict[str, Any]]]:
    """Goal events per campaign for the recipients of these messages."""
    keys: dict[str, set[str]] = {
        "user_id": {m["user_id"] for m in msgs if m["user_id"]},
        "contact": {m["contact"] for m in msgs if m["contact"]},
        "message_id": {m["message_id"] for m in msgs},
    }
    campaigns = {m["campaign_id"] for m in msgs}
    rows = _where_in(
        conn,
        "goal_id, seq, campaign_id, user_id, contact, message_id, event_time",
        "analytics_goal_events",
        keys,
    )
    out: dict[str, dict[tuple[int, int], dict[str, Any]]] = {}
    for r in rows:
        if r["campaign_id"] in campaigns:
            out.setdefault(r["campaign_id"], {})[(r["goal_id"], r["seq"])] = r
    return {c: list(v.values()) for c, v in out.items()}


def settle(
    conn: Connection,
    msgs: dict[str, Message],
    before: dict[str, Counter[Key]],
    matcher: goal_store.Matcher,
    gone: set[str] | None = None,
) -> None:
    """Recompute conversions and statuses, write rows, and move rollups by the difference.

    ``gone``: lifecycles merged into another one (a provider id learnt to be an alias).
    """
    delta: Counter[Key] = Counter()
    for mid in sorted(gone or ()):
        delta.subtract(before.get(mid, Counter()))
        conn.execute("DELETE FROM analytics_messages WHERE message_id = ?", (mid,))
    if not msgs:
        _write_rollups(conn, {k: n for k, n in delta.items() if n})
        return
    goal_campaigns = matcher.campaigns | _vendor_campaigns(conn, msgs.values())
    candidates = [m for m in msgs.values() if m["campaign_id"] in goal_campaigns]
    events = _goal_events(conn, candidates) if candidates else {}
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
