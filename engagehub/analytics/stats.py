"""Campaign stats read from rollups (never from raw events): totals, rates, series, breakdowns.

A count falls in a range by the time of its milestone: sends by send time, opens by open time,
conversions by conversion time. Buckets are UTC hours, so ``from``/``to`` round down to the
hour; daily series add up hours.
"""

from __future__ import annotations

from typing import Any

from engagehub.analytics import goals as goal_store
from engagehub.analytics.lifecycle import DAY_MS, HOUR_MS
from engagehub.analytics.lifecycle import METRICS as ROLLUP_METRICS
from engagehub.errors import NotFound, PayloadError
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks
from engagehub.timeutil import format_ts

# Rollup metric -> name in the API.
METRICS = {
    "queued": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "deferred": "deferred",
    "soft_bounced": "soft_bounced",
    "bounced": "bounced",
    "failed": "failed",
    "opened": "opens_unique",
    "opens_total": "opens_total",
    "machine_opened": "machine_opens_unique",
    "machine_opens_total": "machine_opens_total",
    "clicked": "clicks_unique",
    "clicks_total": "clicks_total",
    "bot_clicked": "bot_clicks_unique",
    "bot_clicks_total": "bot_clicks_total",
    "read": "read",
    "unsubscribed": "unsubscribes",
    "spam": "spam_reports",
    "converted": "conversions",
}
SERIES = ("sent", "delivered", "opens_unique", "clicks_unique", "bounced", "conversions")
_SERIES_SUMS = ", ".join(f"SUM({m})" for name in SERIES for m, n in METRICS.items() if n == name)
_ANY = f"CASE WHEN {' OR '.join(f'{m} <> 0' for m in ROLLUP_METRICS)} THEN 1 ELSE 0 END"


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def rates(t: dict[str, int]) -> dict[str, float]:
    """Rates over sends (delivery, bounce) and over delivered (or sent without receipts)."""
    base = t["delivered"] or t["sent"]
    return {
        "delivery_rate": _ratio(t["delivered"], t["sent"]),
        "bounce_rate": _ratio(t["bounced"] + t["soft_bounced"], t["sent"]),
        "open_rate": _ratio(t["opens_unique"], base),
        "click_rate": _ratio(t["clicks_unique"], base),
        "click_to_open_rate": _ratio(t["clicks_unique"], t["opens_unique"]),
        "unsubscribe_rate": _ratio(t["unsubscribes"], base),
        "spam_rate": _ratio(t["spam_reports"], base),
        "conversion_rate": _ratio(t["conversions"], base),
    }


def _totals(counts: dict[str, int]) -> dict[str, int]:
    return {name: int(counts.get(metric, 0)) for metric, name in METRICS.items()}


def campaign_info(conn: Connection, campaign_id: str) -> dict[str, Any]:
    """Name and activity span of a campaign; NotFound when we never saw it."""
    row = conn.one(
        "SELECT campaign_id, name, first_seen, last_seen FROM analytics_campaign_names "
        "WHERE campaign_id = ?",
        (campaign_id,),
    )
    if row is None:
        raise NotFound(f"no campaign {campaign_id!r}", campaign_id=campaign_id)
    return {
        "id": row["campaign_id"],
        "name": row["name"],
        "first_seen": format_ts(row["first_seen"]),
        "last_seen": format_ts(row["last_seen"]),
    }


def list_campaigns(conn: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Every campaign with all-time totals and rates, most recently active first."""
    names = conn.all(
        "SELECT campaign_id, name, first_seen, last_seen FROM analytics_campaign_names "
        "ORDER BY last_seen DESC, campaign_id LIMIT ?",
        (limit,),
    )
    ids = [r["campaign_id"] for r in names]
    counts: dict[str, dict[str, int]] = {i: {} for i in ids}
    sums = ", ".join(f"SUM({m}) AS {m}" for m in ROLLUP_METRICS)
    for part in chunks(ids):
        for r in conn.all(  # all-time totals: the sum of the campaign's day rows
            f"SELECT campaign_id, {sums} FROM analytics_rollups "
            f"WHERE campaign_id IN ({marks(part)}) AND grain = ? GROUP BY campaign_id",
            [*part, DAY_MS],
        ):
            counts[r.pop("campaign_id")] = r
    out = []
    for r in names:
        totals = _totals(counts[r["campaign_id"]])
        out.append(
            {
                "id": r["campaign_id"],
                "name": r["name"],
                "first_seen": format_ts(r["first_seen"]),
                "last_seen": format_ts(r["last_seen"]),
                "totals": totals,
                "rates": rates(totals),
            }
        )
    return out


def campaign_stats(
    conn: Connection,
    campaign_id: str,
    since: int | None = None,
    until: int | None = None,
    channel: str | None = None,
    variation: str | None = None,
    interval: str = "auto",
) -> dict[str, Any]:
    """Stats of one campaign over ``[since, until)`` from rollups, optionally filtered."""
    info = campaign_info(conn, campaign_id)
    if interval not in ("auto", "hour", "day"):
        raise PayloadError("interval must be hour, day or auto", field="interval", value=interval)
    if since is not None and until is not None and until <= since:
        raise PayloadError("to must be after from", field="to", value=format_ts(until))
    where = ["campaign_id = ?"]
    params: list[Any] = [campaign_id]
    if channel:
        where.append("channel = ?")
        params.append(channel)
    if variation is not None:
        where.append("variation = ?")
        params.append(variation)
    clause = " AND ".join(where)
    lo = None if since is None else since - since % HOUR_MS
    span = _span(conn, clause, params, lo, until) if interval == "auto" else (None, None)
    step = _interval(interval, *span)
    counts: dict[str, int] = {}
    groups: dict[tuple[str, str, str], dict[str, int]] = {}
    series: dict[int, dict[str, int]] = {}
    shown: set[int] = set()  # series points with any count (not only in the series' metrics)
    links: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    goal_counts: dict[str, int] = {}
    # Summed inside the database, per series point and per dimension (two small GROUP BYs:
    # Python only adds up a few dozen rows), from day rows for the whole days of the range and
    # hour rows for the rest: a month of a campaign is a few dozen rows.
    sums = ", ".join(f"SUM({m})" for m in ROLLUP_METRICS)
    for grain, a, b in _pieces(lo, until, step):
        bounds = f"{clause} AND grain = ? AND bucket >= ? AND bucket < ?"
        args = [*params, grain, _FAR_PAST if a is None else a, _FAR_FUTURE if b is None else b]
        for point, counted, *values in conn.execute(
            f"SELECT bucket - bucket % {step}, MAX({_ANY}), {_SERIES_SUMS} "
            f"FROM analytics_rollups WHERE {bounds} GROUP BY bucket - bucket % {step}",
            args,
        ).fetchall():
            point_sums = series.setdefault(int(point), dict.fromkeys(SERIES, 0))
            for name, n in zip(SERIES, values, strict=True):
                point_sums[name] += int(n)
            if counted:
                shown.add(int(point))
        for channel_, variation_, step_, *values in conn.execute(
            f"SELECT channel, variation, step, {sums} FROM analytics_rollups WHERE {bounds} "
            "GROUP BY channel, variation, step",
            args,
        ).fetchall():
            _add(groups.setdefault((channel_, variation_, step_), {}), values)
            _add(counts, values)
        for kind, detail, uniques, total in conn.execute(
            "SELECT kind, detail, SUM(uniques), SUM(total) "
            f"FROM analytics_rollup_details WHERE {bounds} GROUP BY kind, detail",
            args,
        ).fetchall():
            uniques, total = int(uniques), int(total)
            if kind == "link":
                link = links.setdefault(detail, {"clicks_unique": 0, "clicks_total": 0})
                link["clicks_unique"] += uniques
                link["clicks_total"] += total
            elif kind == "bounce_reason":
                reasons[detail] = reasons.get(detail, 0) + uniques
            elif kind == "goal":
                goal_counts[detail] = goal_counts.get(detail, 0) + uniques
    reasons = {k: v for k, v in reasons.items() if v}
    goal_counts = {k: v for k, v in goal_counts.items() if v}
    groups = {k: v for k, v in groups.items() if any(v.values())}
    links = {k: v for k, v in links.items() if any(v.values())}
    totals = _totals(counts)
    goal_defs = {str(g.id): g for g in goal_store.load(conn, campaign_id)}
    return {
        "campaign": info,
        "range": {"from": format_ts(since), "to": format_ts(until)},
        "filters": {"channel": channel, "variation": variation},
        "totals": totals,
        "rates": rates(totals),
        "breakdown": [
            {
                "channel": k[0] or None,
                "variation": k[1] or None,
                "step": k[2] or None,
                "totals": (t := _totals(v)),
                "rates": rates(t),
            }
            for k, v in sorted(groups.items())
        ],
        "series": {
            "interval": "day" if step == DAY_MS else "hour",
            "points": [{"t": format_ts(b), **series[b]} for b in sorted(shown)],
        },
        "top_links": _top_links(links),
        "bounce_reasons": [
            {"reason": k, "count": v}
            for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        ],
        "goals": [
            {
                **(goal_defs[k].public() if k in goal_defs else {"id": int(k)}),
                "vendor": k == "0",
                "conversions": v,
            }
            for k, v in sorted(goal_counts.items(), key=lambda kv: int(kv[0]))
        ]
        + [
            {**g.public(), "vendor": False, "conversions": 0}
            for k, g in goal_defs.items()
            if k not in goal_counts
        ],
    }


_FAR_PAST = -(2**62)
_FAR_FUTURE = 2**62


def _add(into: dict[str, int], values: list[Any]) -> None:
    """Add a row of ``ROLLUP_METRICS`` sums into ``into``."""
    for metric, n in zip(ROLLUP_METRICS, values, strict=True):
        into[metric] = into.get(metric, 0) + int(n or 0)


def _span(
    conn: Connection, clause: str, params: list[Any], lo: int | None, until: int | None
) -> tuple[int | None, int | None]:
    """First and last hour with counts in the range: two index probes (MIN and MAX together
    made SQLite scan every hour row of the range)."""
    args = [*params, HOUR_MS, _FAR_PAST if lo is None else lo]
    args.append(_FAR_FUTURE if until is None else until)
    ends = [
        conn.scalar(
            f"SELECT bucket FROM analytics_rollups WHERE {clause} AND grain = ? AND bucket >= ? "
            f"AND bucket < ? ORDER BY bucket {order} LIMIT 1",
            args,
        )
        for order in ("ASC", "DESC")
    ]
    return ends[0], ends[1]


def _pieces(
    lo: int | None, until: int | None, step: int
) -> list[tuple[int, int | None, int | None]]:
    """(grain, from, to) parts of a range: whole UTC days from day rows when the series is
    daily, the partial days at either end (or everything) from hour rows."""
    if step != DAY_MS:
        return [(HOUR_MS, lo, until)]
    first_day = None if lo is None else -(-lo // DAY_MS) * DAY_MS
    last_day = None if until is None else until - until % DAY_MS
    if first_day is not None and last_day is not None and first_day >= last_day:
        return [(HOUR_MS, lo, until)]
    out: list[tuple[int, int | None, int | None]] = [(DAY_MS, first_day, last_day)]
    if lo is not None and first_day is not None and lo < first_day:
        out.append((HOUR_MS, lo, first_day))
    if until is not None and last_day is not None and last_day < until:
        out.append((HOUR_MS, last_day, until))
    return out


def _top_links(links: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    ranked = sorted(
        links.items(), key=lambda kv: (-kv[1]["clicks_total"], -kv[1]["clicks_unique"], kv[0])
    )
    return [{"url": url, **v} for url, v in ranked[:20]]


def _interval(interval: str, first: int | None, last: int | None) -> int:
    if interval == "hour":
        return HOUR_MS
    if interval == "day":
        return DAY_MS
    if first is None or last is None:
        return HOUR_MS
    return DAY_MS if last - first > 3 * DAY_MS else HOUR_MS
