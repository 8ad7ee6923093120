"""A fast path for phone numbers already in E.164 form (CSV files, our own events).

``phonenumbers.parse`` costs ~15-120 µs a number, the largest part of validating a CSV row.
For a string that is ``+`` and digits only, parse reduces to: find the country code, maybe strip
a national prefix, check the length. This module does exactly that with phonenumbers' own
metadata and ``is_possible_number`` (which looks at the country and the length only, so its
answer is cached per pair), and hands every case it does not fully cover (unknown country code,
a national part starting with 0 or with the region's national prefix, impossible numbers) back
to the full parse, so the two always agree (property-tested in tests/consent/test_phones.py).
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, region_code_for_country_code

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@cache
def _country(code: int) -> tuple[bool, re.Pattern[str] | None]:
    """(known calling code, pattern of the national prefix parse would try to strip)."""
    if code not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return False, None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, region_code_for_country_code(code)
    )
    if metadata is None:
        return False, None
    prefix = metadata.national_prefix_for_parsing
    return True, re.compile(prefix) if prefix else None


def fast_e164(text: str) -> str | None:
    """``text`` when it is a possible E.164 number parse would keep as is; None = ask parse."""
    if not _E164.fullmatch(text):
        return None
    digits = text[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        known, prefix = _country(code)
        if known:
            break
    else:
        return None
    national = digits[size:]
    if national[0] == "0" or (prefix is not None and prefix.match(national)):
        return None
    return text if _possible(code, len(national)) else None


@cache
def _possible(code: int, length: int) -> bool:
    """``is_possible_number`` looks at the country and the national number's length only."""
    return bool(phonenumbers.is_possible_number(PhoneNumber(code, int("1" * length))))
