"""Operations shared by the API, the CLI and the dashboard: goals, message lookups."""

from __future__ import annotations

from typing import Any

from engagehub.analytics import goals as goal_store
from engagehub.analytics import staging
from engagehub.analytics.lifecycle import MILESTONES
from engagehub.analytics.processor import AnalyticsProcessor, settle, store_goal_rows
from engagehub.errors import NotFound
from engagehub.processing import shards
from engagehub.storage import logread, sources
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts


def add_goal(
    conn: Connection,
    campaign_id: str,
    event: str,
    where: str | None,
    within: str,
    goal_id: int | None = None,
) -> dict[str, Any]:
    """Create a goal and attribute the goal events already in the log (late goals count too).

    Runs under the analytics cursor locks (every shard's): events up to the cursor that stores
    goal events are scanned here, later ones by the processor, so none is missed or counted twice.
    """
    within_ms = goal_store.validate(campaign_id, event, where, within)
    with conn.transaction():
        cursor = shards.hold_rounds(conn, AnalyticsProcessor.name)
        goal_id = goal_store.insert(conn, campaign_id, event, where, within_ms, goal_id)
        goal = goal_store.get(conn, goal_id)
        matcher = goal_store.Matcher([goal])
        rows: list[tuple[Any, ...]] = []
        named = "type = 'track' AND (event = ? OR vendor_event = ?)"
        for ev in logread.between(conn, 0, cursor, named, (event, event)):
            rows.extend(x for x in matcher.rows(ev) if x[0] == goal_id)
        staging.prepare(conn)
        store_goal_rows(conn, rows)
        staging.touch_window(conn)
        settle(conn, lambda: None)
    return goal.public() | {"backfilled_events": len(rows)}


def change_goal(
    conn: Connection, goal_id: int, campaign_id: str, event: str, where: str | None, within: str
) -> dict[str, Any]:
    """Edit a goal, keeping its id: as if it were removed and added again in one transaction
    (its conversions are re-evaluated, the goal events already in the log attributed anew)."""
    goal_store.validate(campaign_id, event, where, within)
    with conn.transaction():
        remove_goal(conn, goal_id)
        return add_goal(conn, campaign_id, event, where, within, goal_id)


def remove_goal(conn: Connection, goal_id: int) -> None:
    """Delete a goal; messages it converted are re-evaluated against the remaining goals."""
    with conn.transaction():
        shards.hold_rounds(conn, AnalyticsProcessor.name)
        goal_store.get(conn, goal_id)
        ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT message_id FROM analytics_messages WHERE goal_id = ?", (goal_id,)
            ).fetchall()
        ]
        staging.prepare(conn)
        staging.touch(conn, ids)

        def forget() -> None:
            conn.execute("DELETE FROM analytics_goal_events WHERE goal_id = ?", (goal_id,))
            conn.execute("DELETE FROM analytics_goals WHERE id = ?", (goal_id,))

        settle(conn, forget)


def message_view(conn: Connection, message_id: str, limit: int = 500) -> dict[str, Any]:
    """A message's lifecycle (first time of each milestone, final status) and its timeline."""
    from engagehub.eventjson import event_json

    target = conn.scalar(
        "SELECT message_id FROM analytics_message_aliases WHERE alias = ?", (message_id,)
    )
    message_id = str(target or message_id)
    found = conn.one("SELECT * FROM analytics_messages WHERE message_id = ?", (message_id,))
    ids = [message_id] + [
        str(a)
        for (a,) in conn.execute(
            "SELECT alias FROM analytics_message_aliases WHERE message_id = ? ORDER BY alias",
            (message_id,),
        ).fetchall()
    ]
    by_seq = {
        ev.seq: ev
        for mid in ids
        for ev in logread.query(
            conn, logread.EventQuery(message_id=mid, ascending=True, limit=limit)
        )[0]
    }
    # The timeline is in event time (vendors report late and out of order), then log order.
    events = sorted(by_seq.values(), key=lambda ev: (ev.event_time, ev.seq))[:limit]
    if found is None and not events:
        raise NotFound(f"no message {message_id!r}", message_id=message_id)
    names = sources.names(conn)
    timeline = [event_json(ev, names, raw=True) for ev in events]
    if found is None:
        return {"message_id": message_id, "status": None, "milestones": {}, "timeline": timeline}
    hours = conn.all(
        "SELECT url, SUM(opens) AS opens, SUM(machine_opens) AS machine_opens, "
        "SUM(clicks) AS clicks, SUM(bot_clicks) AS bot_clicks, MIN(first_click) AS first_click "
        "FROM analytics_message_hours WHERE message_id = ? GROUP BY url",
        (message_id,),
    )
    links = sorted(
        (r["first_click"], r["url"]) for r in hours if r["url"] and r["first_click"] is not None
    )
    return {
        "message_id": message_id,
        "provider_ids": ids[1:],
        "campaign_id": found["campaign_id"],
        "campaign_name": found["campaign_name"],
        "channel": found["channel"],
        "variation": found["variation"],
        "step": found["step"],
        "user_id": found["user_id"],
        "contact": found["contact"],
        "status": found["status"],
        "milestones": {m: format_ts(found[f"first_{m}"]) for m in MILESTONES},
        "opens_total": sum(int(r["opens"]) for r in hours),
        "machine_opens_total": sum(int(r["machine_opens"]) for r in hours),
        "clicks_total": sum(int(r["clicks"]) for r in hours),
        "bot_clicks_total": sum(int(r["bot_clicks"]) for r in hours),
        "links": [{"url": url, "first_clicked": format_ts(t)} for t, url in links],
        "bounce_reason": found["reason"],
        "converted_at": format_ts(found["converted_at"]),
        "goal_id": found["goal_id"],
        "timeline": timeline,
    }
