"""The demo week: every campaign planned in order, from one seed (pure data, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from engagehub.demo import campaigns
from engagehub.demo.scenario import Builder, Plan, User


def build(seed: int = 1, start: datetime | None = None, users: int = 30) -> Plan:
    """The demo week starting on ``start`` (default: 7 days before today, UTC)."""
    if not 1 <= users <= 900:
        raise ValueError(f"users must be between 1 and 900, got {users}")
    if start is None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = datetime.fromtimestamp(today.timestamp() - 7 * 86400, UTC)
    builder = Builder(seed, start, users)
    clicks: list[tuple[User, int, str]] = []
    campaigns.segment_identify(builder)
    clicks += campaigns.sendgrid_spring_sale(builder)
    campaigns.twilio_flash_sms(builder)
    clicks += campaigns.braze_newsletter_avro(builder)
    campaigns.braze_weekend_push(builder)
    clicks += campaigns.moengage_welcome(builder)
    clicks += campaigns.crossengage_winback(builder)
    campaigns.segment_conversions(builder, clicks)
    return builder.plan
