"""Timestamps (ISO 8601 variants, epoch seconds and millis, offsets), the taxonomy lookup, the
CSV neutraliser and the consent CSV reader, each against properties rather than examples."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engagehub.consent.csv_import import CsvImport
from engagehub.csvsafe import FORMULA_STARTERS, neutralize, unneutralize
from engagehub.errors import PayloadError
from engagehub.taxonomy import get_taxonomy
from engagehub.timeutil import MAX_MS, MIN_MS, TimestampError, format_ts, parse_ts

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


def ms_of(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


@PROPS
@given(ms=st.integers(MIN_MS + 86_400_000, MAX_MS - 86_400_000))
def test_format_then_parse_is_the_identity(ms: int) -> None:
    assert parse_ts(format_ts(ms)) == ms


@PROPS
@given(
    instant=instants,
    tz=offsets,
    sep=st.sampled_from(["T", " "]),
    spec=st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
)
def test_iso_8601_in_any_offset_means_the_same_instant(
    instant: datetime, tz: timezone, sep: str, spec: str
) -> None:
    try:
        local = instant.astimezone(tz)
    except OverflowError:
        assume(False)
    text = local.isoformat(sep=sep, timespec=spec)
    expected = ms_of(instant.replace(microsecond=0 if spec == "seconds" else instant.microsecond))
    if spec == "milliseconds":
        expected = ms_of(instant.replace(microsecond=instant.microsecond // 1000 * 1000))
    assert parse_ts(text) == expected
    if text.endswith("+00:00"):
        assert parse_ts(text[:-6] + "Z") == expected
        assert parse_ts(text[:-6] + "z") == expected
    assert parse_ts(f"  {text}  ") == expected


@PROPS
@given(seconds=st.integers(-(10**10), 10**11 - 1))
def test_epoch_seconds_and_millis(seconds: int) -> None:
    assert parse_ts(seconds) == seconds * 1000
    if not _iso_date(str(seconds)):  # "20240101" is ISO 8601 basic format first, by design
        assert parse_ts(str(seconds)) == seconds * 1000
    millis = seconds * 1000
    if abs(millis) >= 100_000_000_000:  # unambiguous as milliseconds
        assert parse_ts(millis) == millis
        assert parse_ts(str(millis)) == millis
    assert parse_ts(float(seconds) + 0.5) == seconds * 1000 + 500


def _iso_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@PROPS
@given(value=st.one_of(st.text(max_size=40), st.floats(), st.integers(), st.booleans(), st.none()))
def test_anything_else_raises_timestamp_error_only(value: object) -> None:
    try:
        ms = parse_ts(value)
    except TimestampError:
        return
    assert MIN_MS <= ms <= MAX_MS


@PROPS
@given(data=st.data())
def test_taxonomy_lookup_is_case_insensitive_and_closed(data: st.DataObject) -> None:
    taxonomy = get_taxonomy()
    vendor = data.draw(st.sampled_from(sorted(taxonomy.vendors)))
    names = sorted(taxonomy.vendors[vendor].rules)
    name = data.draw(st.sampled_from(names) | st.text(max_size=30))
    resolved = taxonomy.resolve(vendor, name)
    assert resolved.event is None or resolved.event in taxonomy.events
    variant = data.draw(st.sampled_from([name.upper(), name.lower(), name.swapcase()]))
    if taxonomy.vendors[vendor].rule(variant) is taxonomy.vendors[vendor].rule(name):
        assert taxonomy.resolve(vendor, variant).event == resolved.event
    assert taxonomy.resolve(vendor, name) == resolved  # stable across calls (cache)


@PROPS
@given(text=st.text(max_size=30))
def test_neutralize_round_trips_and_defuses(text: str) -> None:
    safe = neutralize(text)
    assert not safe.startswith(FORMULA_STARTERS)
    assert unneutralize(safe) == text


@pytest.mark.parametrize("payload", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "'=x"])
def test_known_payloads_are_defused(payload: str) -> None:
    assert neutralize(payload).startswith("'")


cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@PROPS
@given(
    rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=6),
    newline=st.sampled_from(["\r\n", "\n"]),
    bom=st.booleans(),
)
def test_consent_csv_reader_reads_back_what_any_writer_wrote(
    rows: list[list[str]], newline: str, bom: bool
) -> None:
    """Quoted newlines, CRLF or LF, with or without BOM: the rows come back cell for cell."""
    buffer = io.StringIO()
    # With a bare LF terminator Python's writer leaves a lone CR unquoted; spreadsheets quote all.
    quoting = csv.QUOTE_MINIMAL if newline == "\r\n" else csv.QUOTE_ALL
    writer = csv.writer(buffer, lineterminator=newline, quoting=quoting)
    writer.writerow(["email", "first_name", "note"])
    writer.writerows(rows)
    data = ("\ufeff" if bom else "") + buffer.getvalue()
    reader = CsvImport("0" * 64, 0)
    read = list(reader.read(io.BytesIO(data.encode("utf-8"))))
    assert reader.header == ["email", "first_name", "note"]
    assert read == [(i + 2, row) for i, row in enumerate(rows)]


@pytest.mark.parametrize("data", [b"\xff\xfeemail\n", b"email\nx\xc3\x28\n"])
def test_consent_csv_reader_refuses_other_encodings_clearly(data: bytes) -> None:
    reader = CsvImport("0" * 64, 0)
    with pytest.raises(PayloadError, match="UTF-8"):
        list(reader.read(io.BytesIO(data)))
