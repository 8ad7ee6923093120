"""Twilio Messages API: form-encoded To/From/Body/StatusCallback, HTTP Basic (SID:token).

StatusCallback points at our Twilio status webhook with ``?m=<message id>`` so every status
Twilio reports lands on the same message; ``I-Twilio-Idempotency-Token`` (our message id) makes
a retried request return the first message instead of sending another.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from engagehub.messaging.providers.base import (
    Accepted,
    HttpApiProvider,
    Outgoing,
    TransientProviderError,
    http_error,
)

NAME = "twilio"


class Twilio(HttpApiProvider):
    """SMS through Twilio."""

    name = NAME
    channel = "sms"

    def client_options(self) -> dict[str, Any]:
        """Twilio's API, the account SID and auth token as Basic credentials."""
        s = self.settings
        token = s.twilio_auth_token.get_secret_value() if s.twilio_auth_token else ""
        return {
            "base_url": s.twilio_base_url.rstrip("/"),
            "auth": (s.twilio_account_sid or "", token),
            "timeout": s.provider_timeout_seconds,
        }

    def form(self, msg: Outgoing) -> dict[str, str]:
        """The request form for one message."""
        s = self.settings
        sender = s.twilio_from or ""
        form = {"To": msg.to, "Body": msg.rendered.body or ""}
        form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        if s.public_base_url and s.twilio_status_source:
            form["StatusCallback"] = (
                f"{s.public_base_url.rstrip('/')}/webhooks/twilio/"
                f"{quote(s.twilio_status_source)}/status?m={quote(msg.message_id)}"
            )
        return form

    async def finish(self, handle: Outgoing) -> Accepted:
        """POST the message with our idempotency token."""
        path = f"/2010-04-01/Accounts/{self.settings.twilio_account_sid}/Messages.json"
        try:
            response = await self.client.post(
                path,
                data=self.form(handle),
                headers={"I-Twilio-Idempotency-Token": handle.message_id},
            )
        except httpx.HTTPError as exc:
            raise TransientProviderError(f"Twilio: {type(exc).__name__}: {exc}") from None
        body: dict[str, Any] = {}
        try:
            parsed = response.json()
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            pass
        if response.status_code >= 400:
            detail = body.get("message") or response.text[:200]
            raise http_error(
                f"Twilio {response.status_code} (code {body.get('code')}): {detail}",
                response.status_code,
                str(body["code"]) if body.get("code") is not None else None,
            )
        return Accepted(body.get("sid"), str(body.get("status") or "queued"), body)
