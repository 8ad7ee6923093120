"""What the touched messages count for in the rollups, as pending deltas (``a_d``, ``a_dd``).

The fold subtracts the touched messages' contributions before it changes them and adds them
back after, so the net differences are what the rollups get (``rollups.write_deltas``): any
order, duplication or batching of the same events gives the same rows.
"""

from __future__ import annotations

from engagehub.analytics.lifecycle import (
    METRICS,
    NO_REASON,
    TOTAL_METRICS,
    UNIQUE_METRICS,
    bucket_sql,
)
from engagehub.storage.base import Connection

DIMENSIONS = ("campaign_id", "channel", "variation", "step")

_REASON_AT = "COALESCE(reason_at, bounced, soft_bounced, failed)"
"""The hour (over ``a_m``) a message's bounce or failure counts in the reasons table (its
reason's, else the milestone's: a bounce without a reason still counts)."""


_HOURS = "FROM a_m x CROSS JOIN analytics_message_hours h WHERE h.message_id = x.mid"
"""The touched messages' hourly counters. CROSS JOIN: SQLite walks the few touched messages and
looks their hours up by key; with no statistics on the work table it scanned every message's
hours, every window (a cost growing with the table: quadratic over a catch-up)."""


def add(conn: Connection, sign: int) -> None:
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
    parts.append(f"SELECT {', '.join('x.' + d for d in DIMENSIONS)}, h.bucket, {totals} {_HOURS}")
    keys = "campaign_id, bucket, channel, variation, step"
    _accumulate(conn, "a_d", keys, METRICS, " UNION ALL ".join(parts))
    xdims = ", ".join("x." + d for d in DIMENSIONS)
    _accumulate(
        conn,
        "a_dd",
        f"{keys}, kind, detail",
        ("uniques", "total"),
        f"SELECT {xdims}, h.bucket, 'link' AS kind, h.url AS detail, 0, {sign} * h.clicks "
        f"{_HOURS} AND h.url <> '' "
        f"UNION ALL SELECT {xdims}, {bucket_sql('MIN(h.first_click)')}, 'link', h.url, {sign}, 0 "
        f"{_HOURS} AND h.url <> '' AND h.first_click IS NOT NULL GROUP BY {xdims}, x.mid, h.url "
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
