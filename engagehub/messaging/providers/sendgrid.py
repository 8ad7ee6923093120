"""SendGrid Mail Send v3: JSON personalizations/from/subject/content, Bearer API key.

``custom_args.engagehub_message_id`` carries our message id; SendGrid echoes custom args in
every Event Webhook event, which ``vendors/sendgrid.py`` maps back to ``message_id``. A 202
carries SendGrid's id in ``X-Message-Id``.
"""

from __future__ import annotations

from typing import Any

import httpx

from engagehub.messaging.providers.base import (
    Accepted,
    HttpApiProvider,
    Outgoing,
    TransientProviderError,
    http_error,
)

NAME = "sendgrid"


def payload(msg: Outgoing, sender: str) -> dict[str, Any]:
    """The Mail Send request body for one message."""
    content = []
    if msg.rendered.text is not None:
        content.append({"type": "text/plain", "value": msg.rendered.text})
    if msg.rendered.html is not None:
        content.append({"type": "text/html", "value": msg.rendered.html})
    body: dict[str, Any] = {
        "personalizations": [
            {"to": [{"email": msg.to}], "custom_args": {"engagehub_message_id": msg.message_id}}
        ],
        "from": {"email": sender},
        "subject": msg.rendered.subject or "",
        "content": content,
    }
    if msg.headers:
        body["headers"] = dict(msg.headers)
    return body


class SendGrid(HttpApiProvider):
    """Email through SendGrid."""

    name = NAME
    channel = "email"

    def client_options(self) -> dict[str, Any]:
        """SendGrid's API, the API key as a bearer token."""
        s = self.settings
        key = s.sendgrid_api_key.get_secret_value() if s.sendgrid_api_key else ""
        return {
            "base_url": s.sendgrid_base_url.rstrip("/"),
            "headers": {"Authorization": f"Bearer {key}"},
            "timeout": s.provider_timeout_seconds,
        }

    async def finish(self, handle: Outgoing) -> Accepted:
        """POST /v3/mail/send."""
        try:
            response = await self.client.post(
                "/v3/mail/send", json=payload(handle, self.settings.email_from)
            )
        except httpx.HTTPError as exc:
            raise TransientProviderError(f"SendGrid: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            try:
                errors = response.json().get("errors") or []
                detail = "; ".join(str(e.get("message")) for e in errors) or response.text[:200]
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise http_error(f"SendGrid {response.status_code}: {detail}", response.status_code)
        return Accepted(response.headers.get("x-message-id"), "processed")
