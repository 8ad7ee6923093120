"""Sign requests the way each vendor does, so demo traffic (and tests) pass real verification."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engagehub.vendors import twilio

# Order of the P-256 group: a derived private value must lie in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class SendGridSigner:
    """A P-256 key pair; ``public`` is the base64 DER key the SendGrid console shows.

    With ``seed`` the key is derived from it (the demo re-runs against the same source);
    without, it is fresh (tests).
    """

    def __init__(self, seed: str | None = None) -> None:
        if seed is None:
            self.key = ec.generate_private_key(ec.SECP256R1())
        else:
            digest = hashlib.sha256(f"engagehub-demo-sendgrid:{seed}".encode()).digest()
            value = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
            self.key = ec.derive_private_key(value, ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """SendGrid's headers: ECDSA-SHA256 over timestamp + body, base64 DER."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = self.key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "Content-Type": "application/json",
        }


def twilio_headers(token: str, url: str, params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers of a Twilio form POST to ``url``, signed with the auth token."""
    return {
        "X-Twilio-Signature": twilio.signature(token, url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def bearer(token: str) -> dict[str, str]:
    """Braze Currents and MoEngage Streams authenticate with a bearer token."""
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def basic(write_key: str) -> dict[str, str]:
    """Segment libraries send the write key as the HTTP Basic user name."""
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
