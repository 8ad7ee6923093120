"""Suppression tests send through the messaging fixtures' real SMTP server and provider fakes."""

from tests.messaging.conftest import sendgrid_api, settings, smtp_sink, twilio_api
from tests.messaging.test_sends import provider_client

__all__ = ["provider_client", "sendgrid_api", "settings", "smtp_sink", "twilio_api"]
