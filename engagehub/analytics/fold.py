"""Set-based analytics: a window of the log folded into lifecycles and rollups in SQL.

Nothing here sees an event in Python. One window is staged into a temporary table (message
events with their milestone, dimensions, URL and reason), the messages it touches are listed,
their rollup contributions are subtracted, lifecycles and hourly counters are upserted with
``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` (min of first times, smallest
dimension, sums of counters), conversions and statuses are recomputed, the contributions are
added back, and the net differences are written to the rollups. It all runs in the caller's
transaction, with the cursor: a crash replays the window against the state before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engagehub.analytics.lifecycle import (
    AFTER_SEND,
    ANCHOR,
    DAY_MS,
    FLAGGED,
    HOUR_COUNTERS,
    HOUR_MS,
    METRICS,
    MILESTONE_OF_ACTION,
    MILESTONES,
    NO_REASON,
    NO_URL,
    REASON_MILESTONES,
    TOTAL_METRICS,
    UNIQUE_METRICS,
    bucket_sql,
    status_sql,
)
from engagehub.storage.base import Connection
from engagehub.taxonomy import MESSAGE_CHANNELS, get_taxonomy
from engagehub.timeutil import now_ms

DIMENSIONS = ("campaign_id", "channel", "variation", "step")
_TEXT = ("campaign_id", "campaign_name", "channel", "variation", "step", "user_id", "contact")
_TIMES = (*(f"first_{m}" for m in MILESTONES), "first_left", "first_seen")
MESSAGE_COLUMNS = (*_TEXT, *_TIMES, "last_seen", "reason_at", "reason")
"""Columns of ``analytics_messages`` that a fold sets (after ``message_id``)."""

_TEMP = {
    "a_ms": "event TEXT PRIMARY KEY, milestone TEXT",
    "a_w": "mid TEXT NOT NULL, seq BIGINT NOT NULL, milestone TEXT, t BIGINT NOT NULL, "
    "campaign_id TEXT, campaign_name TEXT, channel TEXT, variation TEXT, step TEXT, "
    "user_id TEXT, contact TEXT, url TEXT, reason TEXT, PRIMARY KEY (mid, seq)",
    "a_touched": "mid TEXT PRIMARY KEY",
    "a_merge": "alias TEXT PRIMARY KEY, target TEXT NOT NULL",
    "a_goal": "campaign_id TEXT NOT NULL, user_id TEXT, contact TEXT, message_id TEXT",
    "a_m": "mid TEXT PRIMARY KEY, campaign_id TEXT, channel TEXT, variation TEXT, step TEXT, "
    + ", ".join(f"{m} BIGINT" for m in UNIQUE_METRICS)
    + ", reason_at BIGINT, reason TEXT, goal_id BIGINT, b0 BIGINT",
    "a_d": "campaign_id TEXT, bucket BIGINT, channel TEXT, variation TEXT, step TEXT, "
    + ", ".join(f"{m} BIGINT" for m in METRICS)
    + ", PRIMARY KEY (campaign_id, bucket, channel, variation, step)",
    "a_dd": "campaign_id TEXT, bucket BIGINT, channel TEXT, variation TEXT, step TEXT, "
    "kind TEXT, detail TEXT, uniques BIGINT, total BIGINT, "
    "PRIMARY KEY (campaign_id, bucket, channel, variation, step, kind, detail)",
    "a_conv": "mid TEXT, t BIGINT, goal_id BIGINT, PRIMARY KEY (mid, t, goal_id)",
}


_REASON_AT = "COALESCE(reason_at, bounced, soft_bounced, failed)"
"""The hour (over ``a_m``) a message's bounce or failure counts in the reasons table (its
reason's, else the milestone's: a bounce without a reason still counts)."""


def prepare(conn: Connection) -> None:
    """Empty work tables for this fold (temporary: per connection, never written to disk).

    Created and filled once per connection (one catalog probe a round, not nine CREATEs and
    the milestone rows again: rounds during ingest are small, so fixed costs count); a rolled
    back first round takes them away again, and the probe then finds none.
    """
    if conn.scalar(_EXISTS[conn.dialect]) is None:
        # SQLite keeps keyed work tables in key order (a GROUP BY over them needs no sort).
        clustered = " WITHOUT ROWID" if conn.dialect == "sqlite" else ""
        for name, columns in _TEMP.items():
            keyed = clustered if "PRIMARY KEY" in columns else ""
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}){keyed}")
            conn.execute(f"DELETE FROM {name}")
        conn.executemany("INSERT INTO a_ms (event, milestone) VALUES (?, ?)", _milestones())
        return
    for name in _TEMP:
        if name != "a_ms":
            conn.execute(f"DELETE FROM {name}")


_EXISTS = {
    "sqlite": "SELECT 1 FROM temp.sqlite_master WHERE type = 'table' AND name = 'a_ms'",
    "postgresql": "SELECT to_regclass('pg_temp.a_ms')",
}


def _milestones() -> list[tuple[str, str | None]]:
    """Canonical message events -> milestone (None: the event only adds dimensions)."""
    channels = MESSAGE_CHANNELS | {"message"}
    return sorted(
        (name, MILESTONE_OF_ACTION.get(ev.action))
        for name, ev in get_taxonomy().events.items()
        if ev.channel in channels
    )


def text_min(conn: Connection, a: str, b: str) -> str:
    """Smallest of two texts, NULL-safe, in code point order on both backends."""
    if conn.dialect == "sqlite":
        return f"COALESCE(MIN({a}, {b}), {a}, {b})"
    return f'LEAST({a} COLLATE "C", {b} COLLATE "C")'


def _num(conn: Connection, fn: str, a: str, b: str) -> str:
    if conn.dialect == "sqlite":
        return f"COALESCE({fn}({a}, {b}), {a}, {b})"
    return f"{'LEAST' if fn == 'MIN' else 'GREATEST'}({a}, {b})"


def _text_lt(conn: Connection, a: str, b: str) -> str:
    return f"{a} < {b}" if conn.dialect == "sqlite" else f'{a} COLLATE "C" < {b} COLLATE "C"'


def _agg_text(conn: Connection, expr: str) -> str:
    return f"MIN({expr})" if conn.dialect == "sqlite" else f'MIN({expr} COLLATE "C")'


def prop(conn: Connection, key: str) -> str:
    """A property of ``e`` (see ``stage``) as text, NULL when missing or empty."""
    if conn.dialect == "sqlite":
        # instr() first: most events lack most keys, and finding a name is cheaper than parsing.
        return (
            f"CASE WHEN instr(e.pj, '\"{key}\"') > 0 THEN "
            f"NULLIF(CAST(json_extract(e.pj, '$.{key}') AS TEXT), '') END"
        )
    return f"NULLIF(e.pj ->> '{key}', '')"


def _flag(conn: Connection, key: str) -> str:
    """SQL: the property is true (JSON true, the string "true" or 1)."""
    if conn.dialect == "sqlite":
        return (
            f"instr(e.pj, '\"{key}\"') > 0 AND "
            f"CAST(json_extract(e.pj, '$.{key}') AS TEXT) IN ('1', 'true')"
        )
    return f"(e.pj -> '{key}') IN ('true'::jsonb, '\"true\"'::jsonb, '1'::jsonb)"


def window_source(conn: Connection, bounds: str, where: str = "1 = 1") -> str:
    """The window's events as ``e`` with parsed properties ``pj`` (parsed once on PostgreSQL)."""
    pj = "e.properties" if conn.dialect == "sqlite" else "e.properties::jsonb"
    return f"(SELECT e.*, {pj} AS pj FROM events e WHERE {bounds} AND ({where})) e"


def stage(conn: Connection, bounds: str, params: list[Any]) -> None:
    """The window's message events into ``a_w``, provider ids resolved through known aliases."""
    flagged = " ".join(
        f"WHEN ms.milestone = '{m}' AND {_flag(conn, key)} THEN '{other}'"
        for m, (key, other) in FLAGGED.items()
    )
    error = (
        f"COALESCE({prop(conn, 'error_message')}, {prop(conn, 'drop_reason')}, "
        f"{prop(conn, 'error_code')})"
    )
    reasons = ", ".join(f"'{m}'" for m in REASON_MILESTONES)
    conn.execute(
        "INSERT INTO a_w (mid, seq, milestone, t, campaign_id, campaign_name, channel, "
        "variation, step, user_id, contact, url, reason) SELECT "
        "COALESCE(a.message_id, e.message_id), e.seq, "
        f"CASE {flagged} ELSE ms.milestone END, e.event_time, "
        f"COALESCE(NULLIF(e.campaign_id, ''), {prop(conn, 'journey_id')}), "
        f"COALESCE({prop(conn, 'campaign_name')}, {prop(conn, 'journey_name')}), "
        "CASE WHEN e.channel <> 'message' THEN NULLIF(e.channel, '') END, "
        f"COALESCE({prop(conn, 'variation_id')}, {prop(conn, 'journey_variation_id')}), "
        f"{prop(conn, 'step_id')}, e.user_id, e.contact, "
        f"CASE WHEN ms.milestone = 'clicked' THEN COALESCE({prop(conn, 'url')}, '{NO_URL}') END, "
        f"CASE WHEN ms.milestone IN ({reasons}) THEN "
        f"substr(COALESCE({prop(conn, 'bounce_reason')}, {error}), 1, 200) END "
        f"FROM {window_source(conn, bounds, 'e.message_id IS NOT NULL')} "
        "JOIN a_ms ms ON ms.event = e.event "
        "LEFT JOIN analytics_message_aliases a ON a.alias = e.message_id",
        params,
    )


def touch_window(conn: Connection) -> None:
    """Messages the staged window, the merges and the new goal events touch."""
    conn.execute("INSERT INTO a_touched (mid) SELECT DISTINCT mid FROM a_w WHERE true")
    for column in ("alias", "target"):
        conn.execute(
            f"INSERT INTO a_touched (mid) SELECT DISTINCT {column} FROM a_merge WHERE true "
            "ON CONFLICT (mid) DO NOTHING"
        )
    if conn.scalar("SELECT 1 FROM a_goal LIMIT 1") is None:
        return
    for column in RECIPIENT_KEYS:
        conn.execute(recipients_sql(column))


RECIPIENT_KEYS = ("user_id", "contact", "message_id")
"""How a goal event names the messages it may convert (its recipient, or the message)."""


def recipients_sql(column: str) -> str:
    """Touch the messages of the goal events' recipients (by ``column``) in their campaigns.

    CROSS JOIN: SQLite walks the few goal events and looks recipients up by index; with no
    statistics on the temporary table it used to scan every lifecycle, every window.
    """
    return (
        "INSERT INTO a_touched (mid) SELECT DISTINCT m.message_id FROM a_goal g "
        f"CROSS JOIN analytics_messages m WHERE m.{column} = g.{column} "
        "AND m.campaign_id = g.campaign_id ON CONFLICT (mid) DO NOTHING"
    )


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


def lock_touched(conn: Connection) -> None:
    """PostgreSQL: lock the touched lifecycles in key order before their contributions are read
    (shards run side by side, and a message resolved through an alias can be another shard's)."""
    if conn.dialect == "postgresql":
        conn.execute(
            "SELECT message_id FROM analytics_messages WHERE message_id IN "
            "(SELECT mid FROM a_touched) ORDER BY message_id FOR NO KEY UPDATE"
        )


def ordered(conn: Connection, keys: str) -> str:
    """``ORDER BY keys`` on PostgreSQL: shards upsert shared rows (rollups, totals, names) in key
    order, so two of them wait for each other's row locks but never in a cycle."""
    return f" ORDER BY {keys}" if conn.dialect == "postgresql" else ""


def touch(conn: Connection, ids: Iterable[str]) -> None:
    """Add these messages to the touched set (goal changes)."""
    conn.executemany(
        "INSERT INTO a_touched (mid) VALUES (?) ON CONFLICT (mid) DO NOTHING",
        [(i,) for i in sorted(set(ids))],
    )


def contributions(conn: Connection, sign: int) -> None:
    """Add ``sign`` x what the touched messages count for to the pending deltas."""
    conn.execute("DELETE FROM a_m")
    conn.execute(
        "INSERT INTO a_m (mid, campaign_id, channel, variation, step, "
        f"{', '.join(UNIQUE_METRICS)}, reason_at, reason, goal_id, b0) SELECT m.message_id, "
        "m.campaign_id, COALESCE(m.channel, ''), COALESCE(m.variation, ''), "
        f"COALESCE(m.step, ''), {', '.join(bucket_sql(t) for t in UNIQUE_METRICS.values())}, "
        f"{bucket_sql('m.reason_at')}, m.reason, m.goal_id, {bucket_sql('m.first_seen')} "
        "FROM analytics_messages m "
        "WHERE m.message_id IN (SELECT mid FROM a_touched) AND m.campaign_id IS NOT NULL"
    )
    dims = ", ".join(DIMENSIONS)
    # One row per message for every metric in the hour it was first seen (send, delivery and
    # bounce mostly share it), one more per metric that fell in another hour: ~40% fewer rows
    # to add up than one per metric.
    # a_m holds each metric's hour (its bucket), computed once per message.
    first = ", ".join(
        f"CASE WHEN {m} = b0 THEN {sign} ELSE 0 END" if m in UNIQUE_METRICS else "0"
        for m in METRICS
    )
    parts = [f"SELECT {dims}, b0, {first} FROM a_m"]
    for metric in UNIQUE_METRICS:
        values = ", ".join(str(sign) if m == metric else "0" for m in METRICS)
        parts.append(f"SELECT {dims}, {metric}, {values} FROM a_m WHERE {metric} <> b0")
    totals = ", ".join(
        f"{sign} * h.{TOTAL_METRICS[m]}" if m in TOTAL_METRICS else "0" for m in METRICS
    )
    parts.append(
        f"SELECT {', '.join('x.' + d for d in DIMENSIONS)}, h.bucket, {totals} FROM a_m x "
        "JOIN analytics_message_hours h ON h.message_id = x.mid"
    )
    keys = "campaign_id, bucket, channel, variation, step"
    _accumulate(conn, "a_d", keys, METRICS, " UNION ALL ".join(parts))
    xdims = ", ".join("x." + d for d in DIMENSIONS)
    _accumulate(
        conn,
        "a_dd",
        f"{keys}, kind, detail",
        ("uniques", "total"),
        f"SELECT {xdims}, h.bucket, 'link' AS kind, h.url AS detail, 0, {sign} * h.clicks "
        "FROM a_m x JOIN analytics_message_hours h ON h.message_id = x.mid WHERE h.url <> '' "
        f"UNION ALL SELECT {xdims}, {bucket_sql('MIN(h.first_click)')}, 'link', h.url, {sign}, 0 "
        "FROM a_m x JOIN analytics_message_hours h ON h.message_id = x.mid "
        f"WHERE h.url <> '' AND h.first_click IS NOT NULL GROUP BY {xdims}, x.mid, h.url "
        # A message that bounced or failed without any reason counts under NO_REASON.
        f"UNION ALL SELECT {dims}, {_REASON_AT}, 'bounce_reason', "
        f"COALESCE(reason, '{NO_REASON}'), {sign}, 0 FROM a_m WHERE {_REASON_AT} IS NOT NULL "
        f"UNION ALL SELECT {dims}, converted, 'goal', CAST(goal_id AS TEXT), "
        f"{sign}, 0 FROM a_m WHERE converted IS NOT NULL",
    )


def _accumulate(
    conn: Connection, table: str, keys: str, values: tuple[str, ...], union: str
) -> None:
    """Add rows of ``union`` (DIMENSIONS, bucket, [kind, detail,] values) into ``table``.

    SQLite upserts row by row into the keyed table (no sort); PostgreSQL refuses to update a
    row twice in one statement, so it sums per key first.
    """
    order = ", ".join((*DIMENSIONS, "bucket", *(("kind", "detail") if "kind" in keys else ())))
    columns = ", ".join(values)
    adds = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
    if conn.dialect == "sqlite":
        select = f"SELECT * FROM ({union}) x WHERE true"
    else:
        names = [f"k{i}" for i in range(len(order.split(",")))]
        vals = [f"v{i}" for i in range(len(values))]
        select = (
            f"SELECT {', '.join(names)}, {', '.join(f'SUM({v})' for v in vals)} FROM ({union}) "
            f"AS x ({', '.join(names + vals)}) GROUP BY {', '.join(names)}"
        )
    conn.execute(
        f"INSERT INTO {table} ({order}, {columns}) {select} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )


def _upsert_messages(conn: Connection, select: str, params: list[Any]) -> None:
    """Fold rows of ``select`` (message_id, then MESSAGE_COLUMNS) into lifecycles."""
    old, new = "analytics_messages.", "excluded."
    sets = [f"{c} = {text_min(conn, old + c, new + c)}" for c in _TEXT]
    sets += [f"{c} = {_num(conn, 'MIN', old + c, new + c)}" for c in _TIMES]
    sets.append(f"last_seen = {_num(conn, 'MAX', old + 'last_seen', new + 'last_seen')}")
    earlier = (
        f"{new}reason_at IS NOT NULL AND ({old}reason_at IS NULL OR {new}reason_at < "
        f"{old}reason_at OR ({new}reason_at = {old}reason_at AND "
        f"{_text_lt(conn, new + 'reason', old + 'reason')}))"
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
        "h.first_click FROM a_merge g JOIN analytics_message_hours h ON h.message_id = g.alias",
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
        f"first_click = {_num(conn, 'MIN', old + 'first_click', 'excluded.first_click')}"
    )


def fold_window(conn: Connection) -> None:
    """Upsert lifecycles and hourly counters from the staged window."""
    left = ", ".join(f"'{m}'" for m in AFTER_SEND)
    firsts = ", ".join(
        f"MIN(CASE WHEN w.milestone = '{m}' THEN w.t END) AS first_{m}" for m in MILESTONES
    )
    texts = ", ".join(f"{_agg_text(conn, 'w.' + c)} AS {c}" for c in _TEXT)
    _upsert_messages(
        conn,
        f"SELECT w.mid AS message_id, {texts}, {firsts}, "
        f"MIN(CASE WHEN w.milestone IN ({left}) THEN w.t END) AS first_left, "
        "MIN(w.t) AS first_seen, MAX(w.t) AS last_seen, CAST(NULL AS BIGINT) AS reason_at, "
        "CAST(NULL AS TEXT) AS reason "
        "FROM a_w w GROUP BY w.mid",
        [],
    )
    # The first reason (by time, then text) of the few bounce and failure events.
    conn.execute(
        "UPDATE analytics_messages AS m SET reason_at = r.reason_at, reason = r.reason FROM ("
        f"SELECT w.mid, w.t AS reason_at, {_agg_text(conn, 'w.reason')} AS reason FROM a_w w "
        "JOIN (SELECT mid, MIN(t) AS t FROM a_w WHERE reason IS NOT NULL GROUP BY mid) f "
        "ON f.mid = w.mid AND f.t = w.t WHERE w.reason IS NOT NULL GROUP BY w.mid, w.t) r "
        "WHERE m.message_id = r.mid AND (m.reason_at IS NULL OR r.reason_at < m.reason_at "
        f"OR (r.reason_at = m.reason_at AND {_text_lt(conn, 'r.reason', 'm.reason')}))"
    )
    bucket = bucket_sql("t")
    counts = ", ".join(
        f"SUM(CASE WHEN milestone = '{m}' THEN 1 ELSE 0 END)" for m in HOUR_COUNTERS.values()
    )
    counted = ", ".join(f"'{m}'" for m in HOUR_COUNTERS.values())
    _upsert_hours(
        conn,
        f"SELECT mid, {bucket} AS bucket, COALESCE(url, '') AS url, {counts}, "
        "MIN(CASE WHEN milestone = 'clicked' THEN t END) FROM a_w "
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


def _write_grains(
    conn: Connection,
    table: str,
    deltas: str,
    values: tuple[str, ...],
    extra: str,
    nonzero: str,
    negative: str,
) -> None:
    """Hourly deltas into ``table`` at both grains; rows that fell to zero are deleted."""
    rest = f"channel, variation, step{extra}"
    dims = f"campaign_id, {rest}"
    keys = f"campaign_id, grain, bucket, channel, variation, step{extra}"
    columns = ", ".join(values)
    adds = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
    day = bucket_sql("bucket", DAY_MS)
    conn.execute(
        f"INSERT INTO {table} ({keys}, {columns}) "
        f"SELECT campaign_id, {HOUR_MS}, bucket, channel, variation, step{extra}, {columns} "
        f"FROM {deltas} WHERE {nonzero}{ordered(conn, f'campaign_id, bucket, {rest}')} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )
    conn.execute(
        f"INSERT INTO {table} ({keys}, {columns}) "
        f"SELECT campaign_id, {DAY_MS}, {day}, channel, variation, step{extra}, "
        f"{', '.join(f'SUM({v})' for v in values)} FROM {deltas} WHERE {nonzero} "
        f"GROUP BY {dims}, {day}{ordered(conn, f'campaign_id, {day}, {rest}')} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )
    zero = " AND ".join(f"{v} = 0" for v in values)
    for grain, bucket in ((HOUR_MS, "bucket"), (DAY_MS, day)):
        conn.execute(
            f"DELETE FROM {table} WHERE {zero} AND ({keys}) IN (SELECT DISTINCT campaign_id, "
            f"{grain}, {bucket}, channel, variation, step{extra} FROM {deltas} WHERE {negative})"
        )


def write_deltas(conn: Connection) -> None:
    """Apply the net pending deltas to rollups, details and campaign totals; campaign names."""
    columns = ", ".join(METRICS)
    nonzero = " OR ".join(f"{m} <> 0" for m in METRICS)
    negative = " OR ".join(f"{m} < 0" for m in METRICS)
    _write_grains(conn, "analytics_rollups", "a_d", METRICS, "", nonzero, negative)
    _write_grains(
        conn,
        "analytics_rollup_details",
        "a_dd",
        ("uniques", "total"),
        ", kind, detail",
        "uniques <> 0 OR total <> 0",
        "uniques < 0 OR total < 0",
    )
    sums = ", ".join(f"SUM({m})" for m in METRICS)
    totals = ", ".join(f"{m} = analytics_campaigns.{m} + excluded.{m}" for m in METRICS)
    conn.execute(
        f"INSERT INTO analytics_campaigns (campaign_id, {columns}) "
        f"SELECT campaign_id, {sums} FROM a_d WHERE {nonzero} GROUP BY campaign_id"
        f"{ordered(conn, 'campaign_id')} ON CONFLICT (campaign_id) DO UPDATE SET {totals}"
    )
    old = "analytics_campaign_names."
    conn.execute(
        "INSERT INTO analytics_campaign_names (campaign_id, name, first_seen, last_seen) "
        f"SELECT m.campaign_id, {_agg_text(conn, 'm.campaign_name')}, MIN(m.first_seen), "
        "MAX(m.last_seen) FROM analytics_messages m WHERE m.message_id IN "
        "(SELECT mid FROM a_touched) AND m.campaign_id IS NOT NULL GROUP BY m.campaign_id"
        f"{ordered(conn, 'm.campaign_id')} ON CONFLICT (campaign_id) DO UPDATE SET "
        f"name = {text_min(conn, old + 'name', 'excluded.name')}, "
        f"first_seen = {_num(conn, 'MIN', old + 'first_seen', 'excluded.first_seen')}, "
        f"last_seen = {_num(conn, 'MAX', old + 'last_seen', 'excluded.last_seen')}"
    )
