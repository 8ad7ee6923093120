"""Sign requests the way each vendor does, with keys generated in the test."""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class SendGridSigner:
    """A fresh P-256 key pair; ``public`` is the base64 DER key the SendGrid console shows."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
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
