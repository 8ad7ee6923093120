"""The E.164 fast path agrees with phonenumbers (through ``normalize_phone``) on every input."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engagehub.consent.model import contact_for
from engagehub.consent.phones import fast_e164
from engagehub.contacts import ContactError, normalize_phone
from engagehub.errors import PayloadError

_REGIONS = ("US", "DE", "GB", "IN", "BR", "RU", "IT", "CA")


def _reference(value: str, region: str) -> str | None:
    try:
        return normalize_phone.__wrapped__(value, region)  # type: ignore[attr-defined]
    except ContactError:
        return None


def _example_numbers() -> list[str]:
    """An E.164 example of every type for every region phonenumbers knows, plus neighbours."""
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                out.extend((text, text[:-1], text + "5"))
    return out


_DIGITS = st.text(st.sampled_from("0123456789"), min_size=5, max_size=14)
_CODES = st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
_PLUS = st.one_of(
    st.builds(lambda d: "+" + d, _DIGITS),
    st.builds(lambda c, d: f"+{c}{d}", _CODES, _DIGITS),
)


@settings(max_examples=600, deadline=None)
@given(_PLUS, st.sampled_from(_REGIONS))
def test_fast_path_agrees_with_phonenumbers(value: str, region: str) -> None:
    fast = fast_e164(value)
    if fast is not None:  # the fast path only ever answers with parse's own answer
        assert fast == _reference(value, region)
    try:
        ours: str | None = contact_for("sms", value, region)
    except PayloadError:
        ours = None
    assert ours == _reference(value, region)


def test_fast_path_on_every_region_example() -> None:
    examples = _example_numbers()
    taken = 0
    for value in examples:
        fast = fast_e164(value)
        if fast is not None:
            taken += 1
            for region in _REGIONS:
                assert fast == _reference(value, region), (value, region)
    assert taken > len(examples) // 3  # the fast path really is the common path


@pytest.mark.parametrize(
    "value",
    [
        "+12",  # too short for the pattern
        "+1415555010",  # one digit short for NANP: parse says not possible
        "+390612345678",  # Italian leading zero: left to parse
        "+4401234567890",  # national part starting with 0
        "+9991234567",  # unknown calling code
        "+1 415 555 0100",  # not bare digits
    ],
)
def test_fast_path_declines_what_it_does_not_cover(value: str) -> None:
    assert fast_e164(value) is None


def test_fast_path_takes_plain_numbers() -> None:
    assert fast_e164("+14155550100") == "+14155550100"
    assert fast_e164("+4915112345678") == "+4915112345678"
