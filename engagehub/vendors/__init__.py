"""One module per vendor; each parses the vendor's payloads into IncomingEvents (pure functions).

Source kinds are the vendors a source can be created for. Vendors that sign their webhooks
also expose ``verify(headers, body, url, secret)``.
"""

from __future__ import annotations

from engagehub.vendors import crossengage, segment

VENDORS = {m.NAME: m for m in (segment, crossengage)}

SOURCE_KINDS: dict[str, str] = {
    "segment": "Segment-compatible clients (Tracking API /v1/*); write key in body or Basic auth",
    "crossengage": "CrossEngage outbound events (POST /crossengage/events, Data Feed import)",
}
"""Kind name -> what it receives; ``engagehub sources add --kind`` accepts these."""
