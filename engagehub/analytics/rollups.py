"""The shared rows: net deltas into rollups (hour and day), details, campaign names.

Many messages (and, sharded on PostgreSQL, many shards) write the same campaign rows, so
PostgreSQL upserts them in key order (``ordered``): shards wait for each other's row locks but
never in a cycle.
"""

from __future__ import annotations

from engagehub.analytics.lifecycle import DAY_MS, HOUR_MS, METRICS, bucket_sql
from engagehub.analytics.sqlfn import agg_text, num, text_min
from engagehub.storage.base import Connection


def ordered(conn: Connection, keys: str) -> str:
    """``ORDER BY keys`` on PostgreSQL: shards upsert shared rows (rollups, totals, names) in key
    order, so two of them wait for each other's row locks but never in a cycle."""
    return f" ORDER BY {keys}" if conn.dialect == "postgresql" else ""


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
    """Apply the net pending deltas to rollups and details (a campaign's totals are the sum of
    its day rows); campaign names."""
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
    old = "analytics_campaign_names."
    conn.execute(
        "INSERT INTO analytics_campaign_names (campaign_id, name, first_seen, last_seen) "
        f"SELECT m.campaign_id, {agg_text(conn, 'm.campaign_name')}, MIN(m.first_seen), "
        "MAX(m.last_seen) FROM analytics_messages m WHERE m.message_id IN "
        "(SELECT mid FROM a_touched) AND m.campaign_id IS NOT NULL GROUP BY m.campaign_id"
        f"{ordered(conn, 'm.campaign_id')} ON CONFLICT (campaign_id) DO UPDATE SET "
        f"name = {text_min(conn, old + 'name', 'excluded.name')}, "
        f"first_seen = {num(conn, 'MIN', old + 'first_seen', 'excluded.first_seen')}, "
        f"last_seen = {num(conn, 'MAX', old + 'last_seen', 'excluded.last_seen')}"
    )
