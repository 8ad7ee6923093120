"""The export's column-built paths give exactly what the row-by-row reference gives: Currents
records, Currents folders, partitions, and promoted properties."""

from __future__ import annotations

import io
import itertools
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import fastavro
import orjson
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engagehub.eventjson import name_of
from engagehub.export import currents, files, schema

FOLDERS = (
    "users.messages.email.Click",  # booleans and an array of strings
    "users.messages.pushnotification.Send",
    "users.messages.sms.Delivery",  # to_phone_number from the phone property
    "users.behaviors.Location",  # floats
    "users.behaviors.CustomEvent",
    "users.messages.email.Deferral",  # an int field
    "users.behaviors.pushnotification.TokenStateChange",  # int and long fields
)
KEYS = (
    "email", "phone", "campaign_id", "braze_id", "timezone", "dispatch_id", "variation_id",
    "is_amp", "url", "suspected_bot_click_reason", "is_suspected_bot_click", "latitude",
    "longitude", "altitude", "platform", "ad_tracking_enabled", "properties", "send_id",
    "attempt_count", "time_ms", "push_token_created_at",
)  # fmt: skip
_TEXT = st.sampled_from(["", "x", "12", "2024-01-01", "2024-01-01T10:00:00Z", "true", "ü"])
_KINDS: dict[str, st.SearchStrategy[Any]] = {
    "text": _TEXT,
    "int": st.integers(-(2**40), 2**40),
    "float": st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "texts": st.lists(_TEXT, max_size=3),
    "with_null": st.lists(st.sampled_from([None, "x"]), max_size=3),
    "object": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),
}


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of ``schema.READ_SCHEMA`` (as the export reads them) from partial dicts."""
    base = {
        "id": "e", "source_id": 1, "type": "track", "vendor_event": None, "event": None,
        "channel": "email", "user_id": None, "anonymous_id": None, "contact": None,
        "message_id": None, "campaign_id": None, "time": 1_764_000_000_000,
        "received_at": 1_764_000_000_000, "properties": "{}",
    }  # fmt: skip
    full = [{**base, "seq": i + 1, **row} for i, row in enumerate(rows)]
    for row in full:
        for name in ("time", "received_at"):
            row[name] = datetime.fromtimestamp(row[name] / 1000, tz=UTC)
    return pa.Table.from_pylist(full, schema=schema.READ_SCHEMA)


@st.composite
def _partitions(draw: st.DrawFn) -> tuple[list[dict[str, Any]], bool]:
    """(rows, clean): a few keys, each of one JSON type across the rows when ``clean`` (so
    the column path must run), else one key of mixed types (the reader refuses it)."""
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=6, unique=True))
    kinds = {k: draw(st.sampled_from(list(_KINDS))) for k in keys}
    clean = draw(st.integers(0, 9)) > 0
    if not clean:
        kinds[keys[0]] = "mixed"
    rows = []
    for i in range(draw(st.integers(1, 8))):
        props = {}
        for key, kind in kinds.items():
            if draw(st.booleans()) and i % 2:
                continue
            strategy = st.one_of(*_KINDS.values()) if kind == "mixed" else _KINDS[kind]
            props[key] = draw(st.one_of(st.none(), strategy))
        rows.append(
            {
                "id": f"e{i}",
                "user_id": draw(st.sampled_from([None, "u1"])),
                "contact": draw(st.sampled_from([None, "", "a@example.com", "+4930123", "x"])),
                "campaign_id": draw(st.sampled_from([None, "", "c1"])),
                "time": draw(st.integers(-10_000, 2_000_000_000_000)),
                "properties": orjson.dumps(props).decode(),
            }
        )
    clean = clean and "with_null" not in kinds.values()  # pyarrow misreads some of those
    return rows, clean


def _row(props: dict[str, Any], **log: Any) -> dict[str, Any]:
    return {"properties": orjson.dumps(props).decode(), **log}


@settings(max_examples=80, deadline=None)
@given(_partitions(), st.sampled_from(FOLDERS))
@example(([_row({"email": ""}, contact="a@example.com")], True), "users.messages.email.Click")
@example(([_row({"phone": ""}, contact="+4930")], True), "users.messages.sms.Delivery")
@example(([_row({"campaign_id": "p"}, campaign_id="")], True), "users.messages.email.Click")
@example(([_row({"is_amp": 1}), _row({"is_amp": 0})], True), "users.messages.email.Click")
@example(([_row({"latitude": 2**60 + 1})], True), "users.behaviors.Location")
@example(([_row({"timezone": 5})], True), "users.messages.email.Click")
@example(([_row({"attempt_count": 2.5}), _row({"attempt_count": "3"})], False), FOLDERS[-2])
@example(([_row({"attempt_count": 2.5})], True), FOLDERS[-2])
@example(([_row({"attempt_count": 2**40})], True), FOLDERS[-2])
@example(([_row({"dispatch_id": "2024-01-01"})], True), "users.messages.email.Click")
@example(([_row({"suspected_bot_click_reason": "x"})], True), "users.messages.email.Click")
@example(([_row({}, time=-1_500)], True), "users.messages.email.Click")
def test_currents_columns_are_the_records(
    drawn: tuple[list[dict[str, Any]], bool], folder: str
) -> None:
    rows, clean = drawn
    part = _table(rows)
    reference = pa.Table.from_pylist(
        currents.records(part, folder, {}), schema=currents.arrow_schema(folder)
    )
    built = currents.columns(part, folder, {})
    assert built is not None or not clean
    if built is not None:
        assert built.equals(reference), (built.to_pylist(), reference.to_pylist())
    assert currents.arrow_table(part, folder, {}).equals(reference)
    try:
        written: list[Any] | str = list(
            fastavro.reader(io.BytesIO(currents.avro_file(part, folder, {}, {})))
        )
    except ValueError as exc:
        written = str(exc)
    assert written == _avro(currents.records(part, folder, {}), folder)


def _avro(recs: list[dict[str, Any]], folder: str) -> list[Any] | str:
    """The records as written to Avro and read back, or the error that refused them (a null
    in an array of strings is refused either way)."""
    try:
        data = currents.avro_bytes(recs, folder, {})
    except ValueError as exc:
        return str(exc)
    return list(fastavro.reader(io.BytesIO(data)))


def test_plain_properties_take_the_column_path() -> None:
    props = {"email": "a@example.com", "campaign_name": "Spring", "is_amp": True}
    part = _table([{"properties": orjson.dumps(props).decode(), "time": 1_500}] * 3)
    built = currents.columns(part, "users.messages.email.Open", {})
    assert built is not None
    assert built.column("email_address").to_pylist() == ["a@example.com"] * 3
    assert built.column("is_amp").to_pylist() == [True] * 3
    assert built.column("time").to_pylist() == [1] * 3
    # a partition holding one of Braze's own records is built row by row
    assert currents.columns(part, "users.messages.email.Open", {2: ("x:1", "{}")}) is None


def test_currents_folders_are_the_rules_row_by_row() -> None:
    known = currents.braze_type_of()
    rows = [
        {"event": "Email Delivered"},
        {"event": "Order Done"},
        {"event": "", "vendor_event": "vend"},
        {"event": None, "vendor_event": None, "type": "identify"},
        {"event": None, "vendor_event": ""},
        {"event": "Email Opened"},  # from Braze below: its own type wins
    ]
    table = _table(rows)
    from_braze = {6: ("users.messages.email.Open:abc", "{}")}
    expected = []
    for seq, row in enumerate(table.to_pylist(), start=1):
        if seq in from_braze:
            expected.append(from_braze[seq][0].partition(":")[0])
        elif row["event"] in known:
            expected.append(known[row["event"]])
        else:
            name = name_of(row["event"], row["vendor_event"], row["type"])
            expected.append(currents.OTHER_PREFIX + name)
    assert currents.folder_names(table, from_braze).to_pylist() == expected
    assert expected[1:5] == [
        "engagehub.Order Done",
        "engagehub.vend",
        "engagehub.identify",
        "engagehub.track",
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["B", "a", "A b", "é"]),
            st.integers(-3 * 3_600_000, 5 * 3_600_000),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 3),
)
def test_partitions_group_sort_and_keep_log_order(rows: list[tuple[str, int]], pieces: int) -> None:
    table = _table([{"event": e, "time": t} for e, t in rows])
    cut = [len(rows) * i // pieces for i in range(pieces + 1)]
    chunked = pa.concat_tables(table.slice(a, b - a) for a, b in itertools.pairwise(cut))
    expected: dict[tuple[str, str], list[int]] = defaultdict(list)
    for seq, (event, ms) in enumerate(rows, start=1):
        hour = datetime.fromtimestamp(ms // 3_600_000 * 3600, tz=UTC).strftime("%Y-%m-%d-%H")
        expected[(event, hour)].append(seq)
    found = files.partitions(chunked)
    ranged = files.SortedRange(chunked)
    assert [key for key, _ in found] == sorted(expected, key=lambda k: (k[0].encode(), k[1]))
    assert ranged.keys == [key for key, _ in found]
    for index, (key, indices) in enumerate(found):
        part, parsed = ranged.part(index)
        assert chunked.take(indices).column("seq").to_pylist() == expected[key]
        assert part.column("seq").to_pylist() == expected[key]
        assert parsed is not None
        assert parsed.num_rows == len(expected[key])


def test_a_column_arrow_reads_wrongly_is_decoded_per_row() -> None:
    # pyarrow's JSON reader builds an invalid list column from a null, then [null, "x"]
    props = [{"url": None}, {"url": [None, "x"]}]
    table = files.build_table(_table([{"properties": orjson.dumps(p).decode()} for p in props]))
    table.validate(full=True)
    assert table.column("url").to_pylist() == [None, '[null,"x"]']


def test_promoted_properties_keep_their_text() -> None:
    props = [{"subject": "2024-01-01", "url": "https://x", "bounce_type": 5}, {"subject": "hi"}]
    table = files.build_table(_table([{"properties": orjson.dumps(p).decode()} for p in props]))
    assert table.column("subject").to_pylist() == ["2024-01-01", "hi"]  # no timestamp
    assert table.column("bounce_type").to_pylist() == ["5", None]  # JSON text of a number
    assert table.column("url").to_pylist() == ["https://x", None]


def test_a_number_an_avro_int_cannot_hold_is_no_value() -> None:
    # it used to stop the export (Arrow refused the record), run after run
    part = _table([_row({"attempt_count": 2**40}), _row({"attempt_count": 7})])
    table = currents.arrow_table(part, "users.messages.email.Deferral", {})
    assert table.column("attempt_count").to_pylist() == [None, 7]


CANONICAL = ("Email Delivered", "Email Link Clicked", "Push Sent", "SMS Delivered")


@settings(max_examples=60, deadline=None)
@given(_partitions(), st.sampled_from(CANONICAL))
@example(([_row({"email": ""}, contact="a@example.com")], True), "Email Delivered")
@example(([_row({"is_amp": 1}), _row({"is_amp": "yes"})], False), "Email Link Clicked")
@example(([_row({"ad_tracking_enabled": "true"})], False), "Push Sent")  # a text: converted
@example(([_row({}, time=-1_500)], True), "SMS Delivered")
def test_canonical_currents_avro_from_columns_is_the_records(
    drawn: tuple[list[dict[str, Any]], bool], event: str
) -> None:
    rows, _ = drawn  # a text in a long or boolean field is converted, never a failed file
    table = files.build_table(_table(rows))
    ours = currents.canonical_avro(table, event, {"k": "v"})
    assert ours is not None
    fields = list(schema.currents_shapes()[schema.currents_types()[event]].items())
    assert list(fastavro.reader(io.BytesIO(ours))) == currents.canonical_records(table, fields)


def test_plain_canonical_events_take_the_column_path() -> None:
    props = {"email": "a@example.com", "campaign_name": "Spring", "send_id": "s1"}
    table = files.build_table(_table([_row(props, user_id="u1", campaign_id="c1")] * 3))
    written = currents.canonical_avro(table, "Email Delivered", {})
    assert written is not None
    (record, *_) = list(fastavro.reader(io.BytesIO(written)))
    assert (record["campaign_id"], record["external_user_id"]) == ("c1", "u1")
    assert record["email_address"] == "a@example.com"
    assert currents.canonical_avro(table, "Custom Thing", {}) is None  # no Currents shape


@settings(max_examples=40, deadline=None)
@given(st.lists(_partitions(), min_size=1, max_size=4), st.sampled_from(FOLDERS))
def test_a_range_parsed_once_gives_each_partition_what_its_own_parse_gives(
    drawn: list[tuple[list[dict[str, Any]], bool]], folder: str
) -> None:
    # each drawn group its own event (a key may change type from one partition to the next:
    # the range's properties then parse as one table with a wider type, or not at all)
    events = ["Email Opened", "Email Delivered", "SMS Delivered", "Push Sent"]
    rows = [{**row, "event": events[g]} for g, (group, _) in enumerate(drawn) for row in group]
    for seq, row in enumerate(rows, start=1):  # a key naming its row: the parse stays aligned
        row["properties"] = orjson.dumps({**orjson.loads(row["properties"]), "ref": seq}).decode()
    table = _table(rows)
    cut = len(rows) // 2
    chunked = pa.concat_tables([table.slice(0, cut), table.slice(cut)])  # read in two pieces
    ranged = files.SortedRange(chunked)
    for index, (_, indices) in enumerate(files.partitions(chunked)):
        part, parsed = ranged.part(index)
        alone = chunked.take(indices)
        assert part.equals(alone.combine_chunks())
        if parsed is not None:
            assert parsed.column("ref").to_pylist() == part.column("seq").to_pylist()
        built = files.build_table(part, parsed)
        assert built.equals(files.build_table(alone))
        assert currents.arrow_table(part, folder, {}, parsed).equals(
            currents.arrow_table(alone, folder, {})
        )
        ours = currents.canonical_avro(built, "Email Opened", {}, parsed)
        reference = currents.canonical_avro(built, "Email Opened", {})
        assert (ours is None) == (reference is None)
        if ours is not None and reference is not None:
            assert list(fastavro.reader(io.BytesIO(ours))) == list(
                fastavro.reader(io.BytesIO(reference))
            )
