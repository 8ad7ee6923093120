"""Sending providers: one module per provider, one two-step shape.

``prepare`` does everything that can still be abandoned without a message leaving (SMTP: the
envelope and the DATA body up to, not including, the final "."); ``finish`` is the step after
which the provider has the message (the "." of DATA, or the HTTP request, sent with an
idempotency key so a retried request cannot create a second message). The sender commits the
send as ``handed`` between the two when ``finish`` is not repeatable (SMTP), so a crash before
that commit is safely retried and a crash after it never sends twice.
"""

from __future__ import annotations

from engagehub.errors import ConfigError
from engagehub.messaging.providers.base import Provider
from engagehub.settings import Settings


def for_channel(channel: str, settings: Settings) -> Provider:
    """The configured provider for ``channel``; ConfigError naming the missing variable."""
    if channel == "email":
        if settings.email_provider == "sendgrid":
            from engagehub.messaging.providers.sendgrid import SendGrid

            if settings.sendgrid_api_key is None:
                raise ConfigError("set ENGAGEHUB_SENDGRID_API_KEY to send email with SendGrid")
            return SendGrid(settings)
        from engagehub.messaging.providers.smtp import Smtp

        return Smtp(settings)
    if channel == "sms":
        from engagehub.messaging.providers.twilio import Twilio

        for var, value in (
            ("ENGAGEHUB_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("ENGAGEHUB_TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            ("ENGAGEHUB_TWILIO_FROM", settings.twilio_from),
        ):
            if not value:
                raise ConfigError(f"set {var} to send SMS with Twilio", variable=var)
        return Twilio(settings)
    raise ConfigError(f"no provider for channel {channel!r}", channel=channel)
