"""Campaign stats read from rollups (never from raw events): totals, rates, series, breakdowns.

A count falls in a range by the time of its milestone: sends by send time, opens by open time,
conversions by conversion time. Buckets are UTC hours, so ``from``/``to`` round down to the
hour; daily series add up hours.
"""

from __future__ import annotations

from typing import Any

from engagehub.analytics import goals as goal_store
from engagehub.analytics.lifecycle import HOUR_MS
from engagehub.errors import NotFound, PayloadError
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts

DAY_MS = 24 * HOUR_MS
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
    "read": "read",
    "unsubscribed": "unsubscribes",
    "spam": "spam_reports",
    "converted": "conversions",
}
SERIES = ("sent", "delivered", "opens_unique", "clicks_unique", "bounced", "conversions")


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
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        for r in conn.all(
            "SELECT campaign_id, metric, n FROM analytics_campaigns WHERE campaign_id IN "
            f"({', '.join('?' * len(part))})",
            part,
        ):
            counts[r["campaign_id"]][r["metric"]] = int(r["n"])
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
    if since is not None:
        where.append("bucket >= ?")
        params.append(since - since % HOUR_MS)
    if until is not None:
        where.append("bucket < ?")
        params.append(until)
    if channel:
        where.append("channel = ?")
        params.append(channel)
    if variation is not None:
        where.append("variation = ?")
        params.append(variation)
    clause = " AND ".join(where)
    rows = conn.all(
        "SELECT bucket, channel, variation, step, metric, detail, n FROM analytics_rollups "
        f"WHERE {clause} AND n <> 0",
        params,
    )
    counts: dict[str, int] = {}
    groups: dict[tuple[str, str, str], dict[str, int]] = {}
    series: dict[int, dict[str, int]] = {}
    links: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    goal_counts: dict[str, int] = {}
    first = min((r["bucket"] for r in rows), default=None)
    last = max((r["bucket"] for r in rows), default=None)
    step = _interval(interval, first, last)
    for r in rows:
        metric, detail, n = r["metric"], r["detail"], int(r["n"])
        if metric == "link_unique":
            links.setdefault(detail, {"clicks_unique": 0, "clicks_total": 0})["clicks_unique"] += n
        elif metric == "link_clicks":
            links.setdefault(detail, {"clicks_unique": 0, "clicks_total": 0})["clicks_total"] += n
        elif metric == "bounce_reason":
            reasons[detail] = reasons.get(detail, 0) + n
        elif metric == "goal_converted":
            goal_counts[detail] = goal_counts.get(detail, 0) + n
        else:
            counts[metric] = counts.get(metric, 0) + n
            g = groups.setdefault((r["channel"], r["variation"], r["step"]), {})
            g[metric] = g.get(metric, 0) + n
            b = int(r["bucket"]) - int(r["bucket"]) % step
            s = series.setdefault(b, {})
            s[metric] = s.get(metric, 0) + n
    totals = _totals(counts)
    goal_defs = {str(g.id): g for g in goal_store.load(conn) if g.campaign_id == campaign_id}
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
            "points": [
                {"t": format_ts(b), **{k: v for k, v in _totals(series[b]).items() if k in SERIES}}
                for b in sorted(series)
            ],
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
