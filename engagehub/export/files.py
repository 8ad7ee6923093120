"""Turn a range of log rows into per-partition tables, and write them durably via fsspec."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import threading
from collections.abc import Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import fastavro
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from engagehub.errors import TransientError
from engagehub.export import avro, schema

_loads = orjson.loads
_dumps = orjson.dumps


def text(value: Any) -> str:
    """A JSON value in a string field: a string as is, anything else (numbers, booleans,
    objects) as its JSON text."""
    return value if isinstance(value, str) else _dumps(value).decode()


def _strings(values: list[Any]) -> pa.Array:
    """A string column; non-string JSON values (numbers, booleans) are written as JSON text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if v is None else text(v) for v in values], pa.string())


def build_table(read: pa.Table, parsed: pa.Table | None = None) -> pa.Table:
    """Log columns as read (``schema.READ_SCHEMA``) as one Arrow table of ``schema.SCHEMA``;
    ``parsed`` is the rows' properties already parsed (``SortedRange``), else parsed here."""
    props = read.column("properties").combine_chunks()
    columns = [read.column(name) for name, _ in schema.LOG_FIELDS]
    promoted = _property_columns(props, parsed)
    return pa.Table.from_arrays([*columns, *promoted, props], schema=schema.SCHEMA)


def parse_properties(
    props: pa.Array | pa.ChunkedArray, block_size: int = 1 << 26
) -> pa.Table | None:
    """Every key of the ``properties`` JSON objects as an Arrow column (types inferred), or
    None when Arrow's JSON reader cannot take them (a key with mixed types, say): the caller
    then decodes per row.

    The reader gets the column's own bytes, one object a line (no Python object per row), in
    blocks of ``block_size`` bytes parsed on Arrow's threads. Inferred types are Arrow's, not
    JSON's (a date-like string becomes a timestamp): callers take a column as is only where
    its type is the one they need.
    """
    if isinstance(props, pa.ChunkedArray):
        props = props.combine_chunks()
    if len(props) == 0:
        return pa.table({})
    lines = pc.binary_join_element_wise(props, pa.scalar(""), "\n")
    bounds = pa.Array.from_buffers(
        pa.int32(), len(lines) + 1, [None, lines.buffers()[1]], offset=lines.offset
    )
    lo, hi = bounds[0].as_py(), bounds[len(lines)].as_py()
    data = lines.buffers()[2]
    try:
        # Type inference is faster here than an explicit schema with unexpected fields ignored.
        parsed = pj.read_json(
            pa.BufferReader(data.slice(lo, hi - lo)),
            read_options=pj.ReadOptions(block_size=block_size),
        )
        parsed.validate()  # pyarrow 26 can build a list column whose offsets pass its values
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return parsed if parsed.num_rows == len(props) else None


def _property_columns(props: pa.StringArray, parsed: pa.Table | None = None) -> list[pa.Array]:
    """The promoted property columns: Arrow's JSON reader where a column came out as strings
    (or no value), else that column decoded per row."""
    if parsed is None:
        parsed = parse_properties(props)
    rows: list[dict[str, Any]] | None = None
    present = set(parsed.column_names) if parsed is not None else set()
    out = []
    for name in schema.PROPERTY_COLUMNS:
        if parsed is not None and name not in present:
            out.append(pa.nulls(len(props), pa.string()))
            continue
        if parsed is not None:
            column = parsed.column(name).combine_chunks()
            if column.type in (pa.string(), pa.null()):
                out.append(column.cast(pa.string()))
                continue
        if rows is None:
            rows = [_loads(p) if p else {} for p in props.to_pylist()]
        out.append(_strings([p.get(name) for p in rows]))
    return out


def folder_names(table: pa.Table) -> pa.Array:
    """Each row's ``event_type=`` folder: the canonical name, else the vendor's name, else the
    call type (custom and unmapped events are exported too)."""
    return pc.coalesce(
        table.column("event"), table.column("vendor_event"), table.column("type")
    ).combine_chunks()


_HOUR_MS = 3_600_000


def partitions(
    table: pa.Table, names: pa.Array | None = None
) -> list[tuple[tuple[str, str], pa.Array]]:
    """The rows of each (folder name, ``YYYY-MM-DD-HH`` of the event time), sorted by both:
    the row indices of each partition, in log order.

    ``names`` is each row's folder (``folder_names`` by default). Each row gets one integer key
    (its name's rank, then its hour), one stable sort of that key orders the rows (log order
    kept inside a partition) and the runs' ends split it; the caller gathers each partition
    when it encodes it, so the whole table is never copied at once.
    """
    if table.num_rows == 0:
        return []
    names = folder_names(table) if names is None else names
    if isinstance(names, pa.ChunkedArray):
        names = names.combine_chunks()
    encoded = pc.dictionary_encode(names)
    by_name = pc.array_sort_indices(encoded.dictionary)
    rank = pc.take(pc.array_sort_indices(by_name), encoded.indices).cast(pa.int64())
    hours = pc.divide(
        pc.floor_temporal(table.column("time"), unit="hour").cast(pa.int64()), _HOUR_MS
    ).combine_chunks()
    low = pc.min(hours).as_py()
    key = pc.add(pc.shift_left(rank, 40), pc.subtract(hours, low))
    order = pc.sort_indices(key)
    runs = pc.run_end_encode(key.take(order))
    ends = runs.run_ends.to_pylist()
    out: list[tuple[tuple[str, str], pa.Array]] = []
    start = 0
    for end, value in zip(ends, runs.values.to_pylist(), strict=True):
        name = encoded.dictionary[by_name[value >> 40].as_py()].as_py()
        hour = datetime.fromtimestamp((low + (value & ((1 << 40) - 1))) * 3600, tz=UTC)
        out.append(((name, hour.strftime("%Y-%m-%d-%H")), order.slice(start, end - start)))
        start = end
    return out


_PARSE_BLOCK = 1 << 22
"""Bytes of properties per block of Arrow's JSON reader over a whole range: blocks parse on
its threads (one 64 MB block would keep one core busy while the other waits)."""


class SortedRange:
    """A read range sorted into its partitions once, each partition then a zero-copy slice.

    One take per column over the range (the columns on ``threads`` threads) and one parse of
    its ``properties`` (``parse_properties`` in blocks, beside the sort) cost ~20% less CPU
    than gathering and parsing each of ~100 small partitions on its own. A range whose
    properties do not parse as one table (a key with different types in different events)
    leaves each partition to parse its own, as before.
    """

    def __init__(self, table: pa.Table, names: pa.Array | None = None, threads: int = 2) -> None:
        with ThreadPoolExecutor(max(threads, 1)) as pool:
            parsing = pool.submit(parse_properties, table.column("properties"), _PARSE_BLOCK)
            found = partitions(table, names)
            self.keys = [key for key, _ in found]
            self.starts = np.cumsum([0, *(len(rows) for _, rows in found)]).tolist()
            order = pa.concat_arrays([rows for _, rows in found]) if found else pa.array([])
            parsed = parsing.result()
            columns = table.columns + (parsed.columns if parsed is not None else [])
            taken = list(pool.map(lambda c: c.combine_chunks().take(order), columns))
        self.table = pa.Table.from_arrays(taken[: table.num_columns], schema=table.schema)
        self.parsed = (
            None
            if parsed is None
            else pa.Table.from_arrays(taken[table.num_columns :], schema=parsed.schema)
        )

    def part(self, index: int) -> tuple[pa.Table, pa.Table | None]:
        """Partition ``index``'s rows (in log order) and their parsed properties, or None
        when the range's did not parse as one table."""
        start, end = self.starts[index], self.starts[index + 1]
        parsed = None if self.parsed is None else self.parsed.slice(start, end - start)
        return self.table.slice(start, end - start), parsed


# Dictionary pages only where values repeat (ids, texts and JSON would waste the effort), and
# statistics on the columns readers prune by; both measured to halve the Parquet encode time.
_DICTIONARY = [
    "source_id", "type", "vendor_event", "event", "channel", "campaign_id",
    *(n for n in schema.PROPERTY_COLUMNS if n not in ("email", "phone", "url", "subject")),
]  # fmt: skip
_STATISTICS = ["seq", "time", "received_at"]
_DICTIONARY_SET = frozenset(_DICTIONARY)


def codecs(table: pa.Table, dictionary: Container[str] = ()) -> dict[str, str]:
    """zstd for the columns whose bytes it shrinks; snappy for the ``dictionary``-encoded
    columns (a small dictionary and run-length indices: zstd's per-call set-up cost ~10% of
    the encode for the same bytes); none for a column with no value in this file (a few bytes
    of definition levels; of 34 columns a partition often leaves half empty)."""
    return {
        name: "none"
        if column.null_count == len(column)
        else ("snappy" if name in dictionary else "zstd")
        for name, column in zip(table.column_names, table.columns, strict=True)
    }


def parquet_bytes(table: pa.Table, meta: dict[str, str]) -> bytes:
    """A Parquet file (zstd) carrying the schema version in its key-value metadata."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    names = set(table.column_names)  # ``column_names`` builds a new list at each access:
    sink = pa.BufferOutputStream()  # in the comprehensions it cost ~30% of a small file
    pq.write_table(
        table,
        sink,
        compression=codecs(table, _DICTIONARY_SET),
        use_dictionary=[c for c in _DICTIONARY if c in names],
        write_statistics=[c for c in _STATISTICS if c in names],
    )
    return bytes(sink.getvalue().to_pybytes())


def column_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as Python values; timestamps as epoch milliseconds (what Avro stores), not
    datetime objects, which cost more to make than the rest of the record."""
    if column.type == schema.TS:
        column = column.cast(pa.int64())
    values: list[Any] = column.to_pylist()
    return values


def seconds(ms: int) -> int:
    """Whole seconds of epoch milliseconds, truncated toward zero (as ``int(timestamp())``)."""
    return ms // 1000 if ms >= 0 else -(-ms // 1000)


def avro_bytes(table: pa.Table, event_type: str, meta: dict[str, str]) -> bytes:
    """An Avro container file of the generic export columns (an event type Currents has a
    shape for is ``currents.canonical_avro``'s)."""
    if event_type in schema.currents_types():
        raise ValueError(f"{event_type!r} has a Currents shape: currents.canonical_avro writes it")
    avro_schema = schema.avro_schema(event_type)
    data = avro.container(table, avro_schema, meta)
    if data is not None:
        return data
    names = table.column_names
    columns = [column_values(table.column(n)) for n in names]
    records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    buf = io.BytesIO()
    fastavro.writer(
        buf, fastavro.parse_schema(avro_schema), records, metadata=meta, codec="deflate"
    )
    return buf.getvalue()


class Staging:
    """The files of one range, each written and fsynced as soon as it is encoded (so the
    disk's waits overlap the other partitions' encoding), then published together before the
    caller moves the cursor.

    Local files go to ``<name>.tmp`` and are fsynced; ``publish`` renames them and fsyncs
    their directories. Object stores get one PUT per file (atomic per object). A full disk is
    a TransientError naming the path; ``discard`` leaves no partial file under a final name.
    ``put`` may be called from several threads at once.
    """

    def __init__(self, fs: AbstractFileSystem) -> None:
        self.fs = fs
        self.local = isinstance(fs, LocalFileSystem)
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def put(self, path: str, data: bytes) -> None:
        """Write one file durably under its temporary name (a PUT on object stores)."""
        with self._lock:
            self.paths.append(path)
        with _errors(path):
            if not self.local:
                self.fs.pipe_file(path, data)
                return
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
                os.fsync(f.fileno())

    def publish(self) -> list[str]:
        """Rename every staged file to its final name and make the renames durable."""
        if self.local:
            for path in self.paths:
                with _errors(path):
                    os.replace(path + ".tmp", path)
            directories = sorted({os.path.dirname(p) for p in self.paths})
            with _errors(directories[0] if directories else ""):
                _fsync_all(directories)
        return list(self.paths)

    def discard(self) -> None:
        """Remove the temporary files of a range that failed (the cursor did not move)."""
        if self.local:
            for path in self.paths:
                with contextlib.suppress(OSError):
                    os.unlink(path + ".tmp")


@contextlib.contextmanager
def _errors(path: str) -> Iterator[None]:
    """An OSError while writing ``path`` as a TransientError naming it (a full disk says so)."""
    try:
        yield
    except OSError as exc:
        no_space = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "no space left on device" if no_space else f"{type(exc).__name__}: {exc}"
        raise TransientError(
            f"export could not write {path}: {reason}",
            path=path,
            errno=exc.errno,
            retry="free space and rerun; the cursor did not move",
        ) from None


def write_files(fs: AbstractFileSystem, items: list[tuple[str, bytes]]) -> None:
    """Write every file of ``items`` durably before the caller moves the cursor (``Staging``)."""
    staging = Staging(fs)
    try:
        for path, data in items:
            staging.put(path, data)
        staging.publish()
    except BaseException:
        staging.discard()
        raise


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths: list[str]) -> None:
    """fsync many files or directories at once; the first error (ENOSPC, EIO) is raised."""
    if len(paths) <= 1:
        for path in paths:
            _fsync(path)
        return
    with ThreadPoolExecutor(min(16, len(paths))) as pool:
        list(pool.map(_fsync, paths))


def write_file(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write one file durably (see ``Staging``)."""
    write_files(fs, [(path, data)])


def snapshot_avro(table: pa.Table, meta: dict[str, str]) -> bytes:
    """The subscription states snapshot as Avro."""
    fields = []
    for f in table.schema:
        kind: Any = "long" if f.type == pa.int64() else "string"
        if f.type == schema.TS:
            kind = {"type": "long", "logicalType": "timestamp-millis"}
        fields.append({"name": f.name, "type": ["null", kind], "default": None})
    avro = {
        "type": "record",
        "name": "SubscriptionState",
        "namespace": "engagehub.export",
        "fields": fields,
    }
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro), table.to_pylist(), metadata=meta)
    return buf.getvalue()
