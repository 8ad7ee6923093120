"""One module per vendor; each parses the vendor's payloads into IncomingEvents (pure functions).

Source kinds are the vendors a source can be created for. Vendors that sign their webhooks
also expose ``verify(headers, body, url, secret)``.
"""

from __future__ import annotations

from engagehub.vendors import braze, crossengage, moengage, segment, sendgrid, twilio

VENDORS = {m.NAME: m for m in (segment, crossengage, sendgrid, twilio, braze, moengage)}

SOURCE_KINDS: dict[str, str] = {
    "segment": "Segment-compatible clients (Tracking API /v1/*); write key in body or Basic auth",
    "crossengage": "CrossEngage outbound events (POST /crossengage/events, Data Feed import)",
    "sendgrid": "SendGrid Event Webhook; --secret is the base64 ECDSA public key SendGrid shows",
    "twilio": "Twilio status callbacks and inbound messages; --secret is the auth token",
    "braze": "Braze Currents (HTTP connector, Avro import); --secret is the bearer token",
    "moengage": "MoEngage Streams; --secret is the bearer token",
}
"""Kind name -> what it receives; ``engagehub sources add --kind`` accepts these."""
