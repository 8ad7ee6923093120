"""Avro container files encoded from Arrow columns, not from one Python dict per record.

fastavro encodes ~13 us per record of ~30 nullable fields under the GIL, which bounded Avro
export at ~50k events per CPU-s. The binary encoding of the record shapes we write is small
(every field a ``["null", T]`` union of a primitive), so each field is encoded for all rows at
once with numpy (union index, zigzag varints, fixed-width numbers) and Arrow's element-wise
binary join (string bytes), the fields of a row are joined the same way, and the rows are cut
into deflate blocks. fastavro still writes the header (schema, metadata, sync marker), so the
schema is fastavro's own, and it reads every file back in the tests. A field of another shape
(arrays, non-null types) or a column of an unexpected type returns None: the caller writes
those files with fastavro.
"""

from __future__ import annotations

import io
import zlib
from typing import Any

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BLOCK_BYTES = 1 << 16
"""Uncompressed bytes of records per block (a block ends at the first record past it)."""
_NULL = pa.scalar(b"", pa.binary())
_INTEGER = {"int", "long"}


def container(table: pa.Table, avro_schema: dict[str, Any], meta: dict[str, str]) -> bytes | None:
    """A deflate Avro container of ``table``'s rows in ``avro_schema`` (record fields taken
    from the columns of the same names), or None when a field is of a shape this encoder
    does not write."""
    count = table.num_rows
    names = set(table.column_names)  # a new list at each access of the property
    fields = []
    for field in avro_schema["fields"]:
        if field["name"] not in names:
            return None
        column = table.column(field["name"]).combine_chunks()
        union = field["type"]
        if column.null_count == count and isinstance(union, list) and union[0] == "null":
            fields.append(_nulls(count))  # any ["null", ...] union: its index 0 alone
            continue
        kind = _nullable(union)
        encoded = None if kind is None else _field(column, kind)
        if encoded is None:
            return None
        fields.append(encoded)
    head = io.BytesIO()
    fastavro.writer(head, fastavro.parse_schema(avro_schema), [], metadata=meta, codec="deflate")
    header = head.getvalue()
    if count == 0:
        return header
    records = pc.binary_join_element_wise(*fields, _NULL) if len(fields) > 1 else fields[0]
    return header + _blocks(records, header[-16:])


def _nullable(kind: Any) -> str | None:
    """T of a ``["null", T]`` union of a primitive (timestamps as their long), else None."""
    if not isinstance(kind, list) or len(kind) != 2 or kind[0] != "null":
        return None
    inner = kind[1]
    if isinstance(inner, dict) and inner.get("logicalType") == "timestamp-millis":
        return "long"
    if inner in ("string", "int", "long", "boolean", "float", "double"):
        return str(inner)
    return None


def _field(column: pa.Array, kind: str) -> pa.Array | None:
    """Each row's bytes of one ``["null", kind]`` field, or None for an unexpected type."""
    valid = ~column.is_null().to_numpy(zero_copy_only=False)
    found = column.type
    if column.null_count == len(column):
        return _nulls(len(column))
    if kind == "string":
        if not (pa.types.is_string(found) or pa.types.is_large_string(found)):
            return None
        values = pc.fill_null(column.cast(pa.binary()), b"")
        lengths = pc.binary_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
        prefix = _union_and_varints(valid, lengths)
        return pc.binary_join_element_wise(prefix, values, _NULL)
    if kind in _INTEGER:
        if pa.types.is_timestamp(found):
            column = column.cast(pa.int64())
        elif not pa.types.is_integer(found):
            return None
        numbers = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return _union_and_varints(valid, numbers)
    if kind == "boolean":
        if found != pa.bool_():
            return None
        values = column.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
        return _fixed(valid, values.reshape(-1, 1))
    if kind in ("float", "double") and pa.types.is_floating(found):
        width = 4 if kind == "float" else 8
        numbers = column.fill_null(0).to_numpy(zero_copy_only=False).astype(f"<f{width}")
        return _fixed(valid, numbers.view(np.uint8).reshape(len(column), width))
    return None


def _nulls(count: int) -> pa.Array:
    """``count`` null values of a ``["null", ...]`` union: the index 0, one byte each."""
    offsets = np.arange(count + 1, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(bytes(count))]
    )


def _fixed(valid: np.ndarray, value_bytes: np.ndarray) -> pa.Array:
    """Union index then fixed-width value bytes (nothing after a null's index)."""
    rows = np.empty((len(valid), 1 + value_bytes.shape[1]), np.uint8)
    rows[:, 0] = valid.astype(np.uint8) * 2  # zigzag varint of the union index 0 or 1
    rows[:, 1:] = value_bytes
    mask = np.empty(rows.shape, bool)
    mask[:, 0] = True
    mask[:, 1:] = valid[:, None]
    return _packed(rows, mask)


def _union_and_varints(valid: np.ndarray, numbers: np.ndarray) -> pa.Array:
    """Union index then the zigzag varint of each number (nothing after a null's index)."""
    zigzag = ((numbers << 1) ^ (numbers >> 63)).view(np.uint64)
    top = int(zigzag.max()) if len(zigzag) else 0
    width = max(1, (top.bit_length() + 6) // 7)  # bytes of the longest varint
    rows = np.empty((len(valid), 1 + width), np.uint8)
    rows[:, 0] = valid.astype(np.uint8) * 2
    mask = np.empty(rows.shape, bool)
    mask[:, 0] = True
    more = valid
    for i in range(width):
        rest = zigzag >> np.uint64(7 * (i + 1))
        after = rest != 0
        byte = (zigzag >> np.uint64(7 * i)).astype(np.uint8) & 0x7F
        rows[:, 1 + i] = byte | (after.astype(np.uint8) << 7)
        mask[:, 1 + i] = more
        more = more & after
    return _packed(rows, mask)


def _packed(rows: np.ndarray, mask: np.ndarray) -> pa.Array:
    """A binary array whose row ``i`` is ``rows[i][mask[i]]``."""
    data = rows[mask]
    offsets = np.zeros(len(rows) + 1, np.int32)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _blocks(records: pa.Array, sync: bytes) -> bytes:
    """The records as deflate blocks: count, size, raw deflate data, sync marker each."""
    _, offset_buffer, data = records.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32)[
        records.offset : records.offset + len(records) + 1
    ]
    offsets = offsets.astype(np.int64)  # positions in the data buffer
    out = io.BytesIO()
    start = 0
    total = len(records)
    while start < total:
        end = int(np.searchsorted(offsets, offsets[start] + BLOCK_BYTES, side="left"))
        end = min(max(end, start + 1), total)
        raw = data[int(offsets[start]) : int(offsets[end])]
        pack = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        body = pack.compress(raw) + pack.flush()
        out.write(_long(end - start) + _long(len(body)) + body + sync)
        start = end
    return out.getvalue()


def _long(value: int) -> bytes:
    """Avro's zigzag varint of one long."""
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
