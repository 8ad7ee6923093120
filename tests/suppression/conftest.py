"""Suppression tests send through the messaging fixtures' real SMTP server."""

from tests.messaging.conftest import settings, smtp_sink

__all__ = ["settings", "smtp_sink"]
