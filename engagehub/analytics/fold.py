"""Lifecycles from the staged window: one row per message, counters per message and hour.

Nothing here sees an event in Python. Lifecycles and hourly counters are upserted from the
staged window (``staging``) with ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE``
(min of first times, smallest dimension, sums of counters), lifecycles started under a provider
id are merged into their message, and conversions are recomputed from stored goal events. The
processor's ``settle`` runs it between the contributions out and back in
(``contributions``), then writes the net deltas (``rollups``). It all runs in the caller's
transaction, with the cursor: a crash replays the window against the state before it.
"""

from __future__ import annotations

from typing import Any

from engagehub.analytics.lifecycle import (
    AFTER_SEND,
    ANCHOR,
    HOUR_COUNTERS,
    MILESTONES,
    bucket_sql,
    status_sql,
)
from engagehub.analytics.sqlfn import agg_text, num, text_lt, text_min
from engagehub.analytics.staging import RECIPIENT_KEYS
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

_TEXT = ("campaign_id", "campaign_name", "channel", "variation", "step", "user_id", "contact")
_TIMES = (*(f"first_{m}" for m in MILESTONES), "first_left", "first_seen")
MESSAGE_COLUMNS = (*_TEXT, *_TIMES, "last_seen", "reason_at", "reason")
"""Columns of ``analytics_messages`` that a fold sets (after ``message_id``)."""

_NEVER = (2**63 - 1, -(2**63))
"""first_seen / last_seen of an empty lifecycle: any event's time is smaller / larger."""


def placeholders(conn: Connection, aliases: list[str]) -> None:
    """An empty lifecycle (no campaign: it counts nowhere) for the message each new link points
    to, if it has none yet: a shard resolving the alias then locks an existing row, and never
    inserts another shard's message. Its own events fill it (first times are minimums)."""
    conn.executemany(
        "INSERT INTO analytics_messages (message_id, first_seen, last_seen, updated_at) "
        "SELECT message_id, ?, ?, ? FROM analytics_message_aliases WHERE alias = ? "
        "ON CONFLICT (message_id) DO NOTHING",
        [(*_NEVER, now_ms(), a) for a in aliases],
    )


def _upsert_messages(conn: Connection, select: str, params: list[Any]) -> None:
    """Fold rows of ``select`` (message_id, then MESSAGE_COLUMNS) into lifecycles."""
    old, new = "analytics_messages.", "excluded."
    sets = [f"{c} = {text_min(conn, old + c, new + c)}" for c in _TEXT]
    sets += [f"{c} = {num(conn, 'MIN', old + c, new + c)}" for c in _TIMES]
    sets.append(f"last_seen = {num(conn, 'MAX', old + 'last_seen', new + 'last_seen')}")
    earlier = (
        f"{new}reason_at IS NOT NULL AND ({old}reason_at IS NULL OR {new}reason_at < "
        f"{old}reason_at OR ({new}reason_at = {old}reason_at AND "
        f"{text_lt(conn, new + 'reason', old + 'reason')}))"
    )
    sets += [
        f"{c} = CASE WHEN {earlier} THEN {new}{c} ELSE {old}{c} END"
        for c in ("reason_at", "reason")
    ]
    reached_both = f"({old}first_{{m}} IS NOT NULL OR {new}first_{{m}} IS NOT NULL)"
    sets.append(f"status = {status_sql(reached_both)}")
    sets.append(f"updated_at = {new}updated_at")
    columns = ", ".join(MESSAGE_COLUMNS)
    conn.execute(
        f"INSERT INTO analytics_messages (message_id, {columns}, status, updated_at) "
        f"SELECT x.message_id, {', '.join('x.' + c for c in MESSAGE_COLUMNS)}, "
        f"{status_sql('x.first_{m} IS NOT NULL')}, ? FROM ({select}) x WHERE true "
        f"ON CONFLICT (message_id) DO UPDATE SET {', '.join(sets)}",
        [now_ms(), *params],
    )


def merge_aliases(conn: Connection) -> None:
    """Fold lifecycles started under a provider id into the message it turned out to be."""
    if conn.scalar("SELECT COUNT(*) FROM a_merge") == 0:
        return
    columns = ", ".join("m." + c for c in MESSAGE_COLUMNS)
    _upsert_messages(
        conn,
        f"SELECT g.target AS message_id, {columns} FROM a_merge g "
        "JOIN analytics_messages m ON m.message_id = g.alias",
        [],
    )
    _upsert_hours(
        conn,
        f"SELECT g.target AS mid, h.bucket, h.url, {', '.join('h.' + c for c in HOUR_COUNTERS)}, "
        "h.first_click FROM a_merge g CROSS JOIN analytics_message_hours h "
        "WHERE h.message_id = g.alias",  # CROSS JOIN: by key from the few merges, never a scan
    )
    for table in ("analytics_messages", "analytics_message_hours"):
        conn.execute(f"DELETE FROM {table} WHERE message_id IN (SELECT alias FROM a_merge)")


def _upsert_hours(conn: Connection, select: str) -> None:
    """Add rows of ``select`` (mid, bucket, url, HOUR_COUNTERS..., first_click) to counters."""
    old = "analytics_message_hours."
    adds = ", ".join(f"{c} = {old}{c} + excluded.{c}" for c in HOUR_COUNTERS)
    conn.execute(
        "INSERT INTO analytics_message_hours (message_id, bucket, url, "
        f"{', '.join(HOUR_COUNTERS)}, first_click) SELECT * FROM ({select}) x WHERE true "
        f"ON CONFLICT (message_id, bucket, url) DO UPDATE SET {adds}, "
        f"first_click = {num(conn, 'MIN', old + 'first_click', 'excluded.first_click')}"
    )


def fold_window(conn: Connection) -> None:
    """Upsert lifecycles and hourly counters from the staged window."""
    left = ", ".join(f"'{m}'" for m in AFTER_SEND)
    # FILTER, not MIN(CASE ...): an aggregate step runs only for the rows of its milestone
    # (the GROUP BY: 1.60 -> 1.35 ms per 1,000-event window of bench e2e).
    firsts = ", ".join(
        f"MIN(w.t) FILTER (WHERE w.milestone = '{m}') AS first_{m}" for m in MILESTONES
    )
    texts = ", ".join(f"{agg_text(conn, 'w.' + c)} AS {c}" for c in _TEXT)
    _upsert_messages(
        conn,
        f"SELECT w.mid AS message_id, {texts}, {firsts}, "
        f"MIN(w.t) FILTER (WHERE w.milestone IN ({left})) AS first_left, "
        "MIN(w.t) AS first_seen, MAX(w.t) AS last_seen, CAST(NULL AS BIGINT) AS reason_at, "
        "CAST(NULL AS TEXT) AS reason "
        "FROM a_w w GROUP BY w.mid",
        [],
    )
    # The first reason (by time, then text) of the few bounce and failure events.
    conn.execute(
        "UPDATE analytics_messages AS m SET reason_at = r.reason_at, reason = r.reason FROM ("
        f"SELECT w.mid, w.t AS reason_at, {agg_text(conn, 'w.reason')} AS reason FROM a_w w "
        "JOIN (SELECT mid, MIN(t) AS t FROM a_w WHERE reason IS NOT NULL GROUP BY mid) f "
        "ON f.mid = w.mid AND f.t = w.t WHERE w.reason IS NOT NULL GROUP BY w.mid, w.t) r "
        "WHERE m.message_id = r.mid AND (m.reason_at IS NULL OR r.reason_at < m.reason_at "
        f"OR (r.reason_at = m.reason_at AND {text_lt(conn, 'r.reason', 'm.reason')}))"
    )
    bucket = bucket_sql("t")
    counts = ", ".join(f"COUNT(*) FILTER (WHERE milestone = '{m}')" for m in HOUR_COUNTERS.values())
    counted = ", ".join(f"'{m}'" for m in HOUR_COUNTERS.values())
    _upsert_hours(
        conn,
        f"SELECT mid, {bucket} AS bucket, COALESCE(url, '') AS url, {counts}, "
        "MIN(t) FILTER (WHERE milestone = 'clicked') FROM a_w "
        f"WHERE milestone IN ({counted}) "
        f"GROUP BY mid, {bucket}, COALESCE(url, '')",
    )


def convert(conn: Connection) -> None:
    """Recompute conversions of touched messages from the stored goal events.

    A message converts at its recipient's earliest goal event (ties: lowest goal id) within the
    goal's window after the anchor; a vendor-reported conversion (goal 0) counts for the message
    it names, or, naming none, for the recipient's messages anchored before it.
    """
    for column in RECIPIENT_KEYS:
        conn.execute(conversions_sql(column))
    first = "(SELECT MIN(c.t) FROM a_conv c WHERE c.mid = m.message_id)"
    conn.execute(
        f"UPDATE analytics_messages AS m SET converted_at = {first}, goal_id = "
        f"(SELECT MIN(c.goal_id) FROM a_conv c WHERE c.mid = m.message_id AND c.t = {first}) "
        "WHERE m.message_id IN (SELECT mid FROM a_touched) AND (m.converted_at IS NOT NULL "
        "OR m.message_id IN (SELECT mid FROM a_conv))"
    )


def conversions_sql(column: str) -> str:
    """Candidate conversions of the touched messages from goal events naming their ``column``
    (looked up by recipient and campaign: migration 0313)."""
    anchor = ANCHOR.replace("first_", "m.first_")
    qualifies = (
        "CASE WHEN ge.goal_id = 0 THEN (CASE WHEN ge.message_id IS NOT NULL "
        f"THEN ge.message_id = m.message_id ELSE {anchor} IS NOT NULL "
        f"AND ge.event_time >= {anchor} END) "
        f"ELSE g.id IS NOT NULL AND {anchor} IS NOT NULL AND ge.event_time >= {anchor} "
        f"AND ge.event_time <= {anchor} + g.within_ms END"
    )
    return (
        "INSERT INTO a_conv (mid, t, goal_id) SELECT m.message_id, ge.event_time, ge.goal_id "
        "FROM analytics_messages m "
        f"JOIN analytics_goal_events ge ON ge.{column} = m.{column} "
        "LEFT JOIN analytics_goals g ON g.id = ge.goal_id "
        "WHERE m.message_id IN (SELECT mid FROM a_touched) "
        f"AND ge.campaign_id = m.campaign_id AND {qualifies} ON CONFLICT DO NOTHING"
    )
