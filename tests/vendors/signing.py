"""Sign requests the way each vendor does (the logic lives in the package: the demo uses it)."""

from __future__ import annotations

from engagehub.demo.signing import SendGridSigner, basic, bearer, twilio_headers

__all__ = ["SendGridSigner", "basic", "bearer", "twilio_headers"]
