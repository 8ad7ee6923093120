"""The vendor registry: one module per vendor, each implementing ``vendors.base.Vendor``.

Source kinds (``engagehub sources add --kind``, ``POST /api/sources``), the ``/webhooks/...``
routes (``ingest.webhooks``), the generated vendor reference page and the demo's sources all
come from ``VENDORS``: adding a vendor is adding its module here.
"""

from __future__ import annotations

from engagehub.vendors import braze, crossengage, moengage, segment, sendgrid, twilio
from engagehub.vendors.base import Vendor, Webhook

VENDORS: dict[str, Vendor] = {
    m.KIND: m for m in (segment, crossengage, sendgrid, twilio, braze, moengage)
}
"""Source kind -> its vendor module, in the order kinds are listed."""

SOURCE_KINDS: dict[str, str] = {kind: v.DESCRIPTION for kind, v in VENDORS.items()}
"""Kind name -> what it receives; ``engagehub sources add --kind`` accepts these."""


def webhooks() -> list[tuple[str, Webhook]]:
    """Every ``/webhooks/...`` route of every vendor: (kind, webhook), in registry order."""
    return [(kind, hook) for kind, v in VENDORS.items() for hook in v.WEBHOOKS]


def webhook_path(name: str, source: str) -> str:
    """The path of the webhook route ``name`` (e.g. ``"twilio_status"``) for source ``source``."""
    for _, hook in webhooks():
        if hook.name == name:
            return "/webhooks/" + hook.path.format(source=source)
    raise KeyError(f"no webhook named {name!r}")
