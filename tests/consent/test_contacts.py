"""Contact normalization: the fast email path agrees with email_validator on every input."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from engagehub.contacts import ContactError, _plain, normalize_email, normalize_phone


def _reference(value: str) -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _ours(value: str) -> str | None:
    try:
        return normalize_email(value)
    except ContactError:
        return None


_ATEXT = st.sampled_from("abcXYZ019!#$%&'*+/=?^_`{|}~-.")
_LABEL = st.text(st.sampled_from("abz09-"), min_size=1, max_size=8)
_LOOSE = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text(_ATEXT, min_size=1, max_size=12),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "ORG", "test", "local", "c0m", "io", "x"]),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.emails(), _LOOSE, st.text(max_size=30)))
def test_fast_path_agrees_with_email_validator(value: str) -> None:
    assert _ours(value) == _reference(value)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("Ada@Example.COM", True),
        ("a@x.test", False),
        ("a..b@x.com", False),
        ("a@-b.com", False),
        ("a@xn--bcher-kva.de", False),
        ("x" * 65 + "@example.com", False),
    ],
)
def test_fast_path_only_takes_plain_addresses(value: str, plain: bool) -> None:
    assert _plain(value.lower()) is plain


def test_phone_normal_form_and_errors() -> None:
    assert normalize_phone("(415) 555-0100", "US") == "+14155550100"
    assert normalize_phone("whatsapp:+4915112345678") == "+4915112345678"
    with pytest.raises(ContactError, match="'12'"):
        normalize_phone("12")
