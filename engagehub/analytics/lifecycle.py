"""What a message's lifecycle is made of, and what it contributes to campaign rollups.

A lifecycle keeps the first time of each milestone (``min``), so any order of the same events
gives the same row. Rollups are not incremented event by event: a change to a message subtracts
what the message contributed before and adds what it contributes now
(``analytics/contributions.py`` does both in SQL), so a late earlier event, a campaign or
variation learnt late, or a conversion found late all move counts to the right hour and
dimension without double counting.

The definitions here are data that the SQL is generated from: a new rollup metric is one entry
in ``UNIQUE_METRICS`` or ``TOTAL_METRICS`` and one column in ``analytics_rollups`` (a
migration ``ALTER TABLE ... ADD COLUMN ... NOT NULL DEFAULT 0``).
"""

from __future__ import annotations

HOUR_MS = 3_600_000
# Dashboard rows for bounces and clicks the vendor sent without a reason or a URL: every
# bounce and click is counted somewhere, so the tables add up to the totals.
NO_REASON = "(no reason given)"
NO_URL = "(no URL)"
DAY_MS = 24 * HOUR_MS
GRAINS = (HOUR_MS, DAY_MS)
"""Rollup bucket widths: every count is kept per UTC hour and per UTC day."""

# Canonical action -> lifecycle milestone (unknown actions leave the milestones alone).
MILESTONE_OF_ACTION = {
    "queued": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sending": "queued",
    "processed": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "deferred": "deferred",
    "soft_bounced": "soft_bounced",
    "bounced": "bounced",
    "failed": "failed",
    "undelivered": "failed",
    "rejected": "failed",
    "dropped": "failed",
    "canceled": "failed",
    "aborted": "failed",
    "retried": "deferred",
    "opened": "opened",
    "viewed": "opened",
    "shown": "opened",
    "machine_opened": "machine_opened",
    "clicked": "clicked",
    "unsubscribed": "unsubscribed",
    "group_unsubscribed": "unsubscribed",
    "spam_reported": "spam",
    "read": "read",
}
MILESTONES = (
    "queued",
    "sent",
    "delivered",
    "deferred",
    "soft_bounced",
    "bounced",
    "opened",
    "machine_opened",
    "clicked",
    "bot_clicked",
    "unsubscribed",
    "spam",
    "failed",
    "read",
)
# Final status: the highest-ranked milestone reached (order of arrival does not matter).
STATUS_RANK = (
    "queued",
    "sent",
    "deferred",
    "soft_bounced",
    "delivered",
    "read",
    "opened",
    "clicked",
    "failed",
    "bounced",
    "spam",
    "unsubscribed",
)
AFTER_SEND = ("delivered", "deferred", "soft_bounced", "bounced", "opened", "clicked", "read")
"""Milestones that prove the message left the sender (``first_left``: a send without Sent)."""
REASON_MILESTONES = ("bounced", "soft_bounced", "failed")
"""Milestones whose events carry the reason kept per message (first by time, then text)."""

SENT_AT = "COALESCE(first_sent, first_left)"
"""When the message was sent: its Sent event, else the first sign it left the sender."""
ANCHOR = "COALESCE(first_delivered, first_sent, first_left)"
"""Conversion windows start at delivery, or at send where no delivery receipt came."""

UNIQUE_METRICS: dict[str, str] = {
    "queued": "first_queued",
    "sent": SENT_AT,
    "delivered": "first_delivered",
    "deferred": "first_deferred",
    "soft_bounced": "first_soft_bounced",
    "bounced": "first_bounced",
    "failed": "first_failed",
    "opened": "first_opened",
    "machine_opened": "first_machine_opened",
    "clicked": "first_clicked",
    "bot_clicked": "first_bot_clicked",
    "read": "first_read",
    "unsubscribed": "first_unsubscribed",
    "spam": "first_spam",
    "converted": "converted_at",
}
"""Rollup column -> the time (over ``analytics_messages``) a message counts once at."""
TOTAL_METRICS: dict[str, str] = {
    "opens_total": "opens",
    "machine_opens_total": "machine_opens",
    "clicks_total": "clicks",
    "bot_clicks_total": "bot_clicks",
}
"""Rollup column -> counter of ``analytics_message_hours`` (every event, at its own hour)."""
HOUR_COUNTERS: dict[str, str] = {
    "opens": "opened",
    "machine_opens": "machine_opened",
    "clicks": "clicked",
    "bot_clicks": "bot_clicked",
}
"""Counter of ``analytics_message_hours`` -> the milestone whose every event it counts."""
FLAGGED = {"opened": ("machine_open", "machine_opened"), "clicked": ("bot_click", "bot_clicked")}
"""An event of this milestone whose property is true counts as the other milestone instead
(Apple MPP and proxy opens; link scanners' clicks): human opens and clicks stay apart."""
METRICS = (*UNIQUE_METRICS, *TOTAL_METRICS)
"""Every column of ``analytics_rollups`` after the dimensions."""


def bucket_sql(expr: str, width: int = HOUR_MS) -> str:
    """SQL for the start of the UTC hour (or ``width``) holding ``expr`` (floor, also < 1970)."""
    return f"(({expr}) - ((({expr}) % {width}) + {width}) % {width})"


def status_sql(reached: str) -> str:
    """SQL for the final status; ``reached`` formats a milestone into "was it reached" SQL."""
    cases = " ".join(
        f"WHEN {reached.format(m=name)} THEN '{name}'" for name in reversed(STATUS_RANK)
    )
    return f"CASE {cases} END"
