"""SMS encoding and segments: what a carrier bills, so a preview can show it before sending.

GSM 03.38 basic characters take 7 bits (160 per single message, 153 per part of a concatenated
one); the extension table (``^{}\\[~]|€`` and form feed) takes an escape plus the character, so
two septets. Anything else forces UCS-2: 70 per message, 67 per part (surrogate pairs count 2).
"""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
STOP_FOOTER = "Reply STOP to unsubscribe"


@dataclass(slots=True, frozen=True)
class SmsInfo:
    """Encoding, billed length in code units, and segment count of one SMS body."""

    encoding: str
    units: int
    segments: int
    per_segment: int

    def as_dict(self) -> dict[str, object]:
        """JSON form for previews."""
        return {
            "encoding": self.encoding,
            "length": self.units,
            "segments": self.segments,
            "per_segment": self.per_segment,
        }


def analyze(body: str) -> SmsInfo:
    """GSM-7 when every character is in the GSM tables, else UCS-2; segments as billed."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in body):
        units = sum(2 if ch in GSM_EXTENSION else 1 for ch in body)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    if units <= single:
        return SmsInfo(encoding, units, 1 if units else 0, single)
    return SmsInfo(encoding, units, -(-units // part), part)


def with_stop_footer(body: str) -> str:
    """Marketing SMS must tell people how to opt out; add the footer unless STOP is mentioned."""
    if "stop" in body.lower():
        return body
    return f"{body.rstrip()}\n{STOP_FOOTER}"
