"""Avro files encoded from Arrow columns read back, through fastavro, as the records fastavro
itself writes from the same values."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engagehub.export import avro, schema

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Row",
    "namespace": "engagehub.test",
    "doc": "every kind the encoder writes",
    "fields": [
        {"name": "s", "type": ["null", "string"], "default": None},
        {"name": "i", "type": ["null", "int"], "default": None},
        {"name": "l", "type": ["null", "long"], "default": None},
        {"name": "b", "type": ["null", "boolean"], "default": None},
        {"name": "f", "type": ["null", "float"], "default": None},
        {"name": "d", "type": ["null", "double"], "default": None},
        {
            "name": "t",
            "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": None,
        },
    ],
}
ARROW = pa.schema(
    [
        ("s", pa.string()),
        ("i", pa.int32()),
        ("l", pa.int64()),
        ("b", pa.bool_()),
        ("f", pa.float32()),
        ("d", pa.float64()),
        ("t", pa.timestamp("ms", tz="UTC")),
    ]
)
_ROWS = st.fixed_dictionaries(
    {
        "s": st.one_of(st.none(), st.text(max_size=300)),
        "i": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        "l": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        "b": st.one_of(st.none(), st.booleans()),
        "f": st.one_of(st.none(), st.floats(width=32, allow_nan=False)),
        "d": st.one_of(st.none(), st.floats(allow_nan=False)),
        "t": st.one_of(st.none(), st.integers(-(2**40), 2**42)),
    }
)


def _read(data: bytes) -> tuple[list[Any], dict[str, Any], Any]:
    reader = fastavro.reader(io.BytesIO(data))
    return list(reader), reader.metadata, reader.writer_schema


def _fastavro(table: pa.Table, meta: dict[str, str]) -> bytes:
    rows = table.to_pylist()
    for row, ms in zip(rows, table.column("t").cast(pa.int64()).to_pylist(), strict=True):
        row["t"] = ms  # what the export hands fastavro: epoch milliseconds
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(SCHEMA), rows, metadata=meta, codec="deflate")
    return buf.getvalue()


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [r[name] for r in rows] for name in ARROW.names}
    arrays = [
        pa.array(columns[f.name], pa.int64()).cast(f.type)
        if f.name == "t"
        else pa.array(columns[f.name], f.type)
        for f in ARROW
    ]
    return pa.Table.from_arrays(arrays, schema=ARROW)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ROWS, max_size=40))
def test_columns_encode_as_fastavro_writes(rows: list[dict[str, Any]]) -> None:
    table = _table(rows)
    meta = {"engagehub.seq_range": "1-2"}
    ours = avro.container(table, SCHEMA, meta)
    assert ours is not None
    assert _read(ours) == _read(_fastavro(table, meta))


def test_many_rows_are_cut_into_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(avro, "BLOCK_BYTES", 100)
    rows = [
        {"s": "é" * (i % 7), "i": i, "l": -i * 10**12, "b": i % 3 == 0, "f": 0.5, "d": i / 3,
         "t": i * 1000}
        for i in range(500)
    ]  # fmt: skip
    table = _table(rows)
    ours = avro.container(table, SCHEMA, {})
    assert ours is not None
    blocks = list(fastavro.block_reader(io.BytesIO(ours)))
    assert len(blocks) > 10
    assert _read(ours) == _read(_fastavro(table, {}))


def test_other_shapes_are_left_to_fastavro() -> None:
    table = pa.table({"a": pa.array([["x"]], pa.list_(pa.string()))})
    array = {"type": "array", "items": "string"}
    shaped = {"type": "record", "name": "R", "fields": [{"name": "a", "type": ["null", array]}]}
    assert avro.container(table, shaped, {}) is None
    nothing = pa.table({"a": pa.nulls(3, pa.list_(pa.string()))})
    written = avro.container(nothing, shaped, {})  # no value: the union's null, any shape
    assert written is not None
    assert _read(written)[0] == [{"a": None}] * 3
    number = {"type": "record", "name": "R", "fields": [{"name": "a", "type": ["null", "long"]}]}
    assert avro.container(pa.table({"a": ["1"]}), number, {}) is None  # text for a long


def test_the_export_schema_is_encoded_from_columns() -> None:
    generic = schema.avro_schema("Custom Thing")
    empty = schema.SCHEMA.empty_table()
    data = avro.container(empty, generic, {"k": "v"})
    assert data is not None
    records, meta, written = _read(data)
    assert (records, meta["k"]) == ([], "v")
    assert written["name"] == "engagehub.export.Event"
