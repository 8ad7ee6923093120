"""Turn a range of log rows into per-partition tables, and write them durably via fsspec."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from engagehub.errors import TransientError
from engagehub.export import schema

_loads = orjson.loads
_dumps = orjson.dumps


def _strings(values: list[Any]) -> pa.Array:
    """A string column; non-string JSON values (numbers, booleans) are written as JSON text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array(
            [v if v is None or isinstance(v, str) else _dumps(v).decode() for v in values],
            pa.string(),
        )


def build_table(read: pa.Table) -> pa.Table:
    """Log columns as read (``schema.READ_SCHEMA``) as one Arrow table of ``schema.SCHEMA``."""
    props = read.column("properties").combine_chunks()
    columns = [read.column(name) for name, _ in schema.LOG_FIELDS]
    return pa.Table.from_arrays([*columns, *_property_columns(props), props], schema=schema.SCHEMA)


def _property_columns(props: pa.StringArray) -> list[pa.Array]:
    """The promoted property columns: Arrow's JSON reader when all are strings, else per row.

    The reader gets the column's own bytes, one object a line (no Python object per row).
    """
    if len(props) == 0:
        return [pa.array([], pa.string()) for _ in schema.PROPERTY_COLUMNS]
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
            read_options=pj.ReadOptions(block_size=1 << 26),
        )
        if parsed.num_rows != len(props):
            raise ValueError("row count")
        out = []
        for name in schema.PROPERTY_COLUMNS:
            if name not in parsed.column_names:
                out.append(pa.nulls(len(props), pa.string()))
                continue
            column = parsed.column(name).combine_chunks()
            out.append(column if column.type == pa.string() else pc.cast(column, pa.string()))
        return out
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
        rows = [_loads(p) for p in props.to_pylist()]
        return [_strings([p.get(name) for p in rows]) for name in schema.PROPERTY_COLUMNS]


def folder_names(table: pa.Table) -> pa.Array:
    """Each row's ``event_type=`` folder: the canonical name, else the vendor's name, else the
    call type (custom and unmapped events are exported too)."""
    return pc.coalesce(
        table.column("event"), table.column("vendor_event"), table.column("type")
    ).combine_chunks()


def partitions(
    table: pa.Table, names: pa.Array | None = None
) -> list[tuple[tuple[str, str], pa.Table]]:
    """The table split per (folder name, ``YYYY-MM-DD-HH`` of the event time), sorted.

    ``names`` is each row's folder (``folder_names`` by default). One stable sort (rows keep
    their log order inside a partition), then slices at the runs' ends; no Python object per row.
    """
    if table.num_rows == 0:
        return []
    names = folder_names(table) if names is None else names
    hours = pc.floor_temporal(table.column("time"), unit="hour").cast(pa.int64())
    order = pc.sort_indices(
        pa.table({"event": names, "hour": hours, "seq": table.column("seq")}),
        sort_keys=[("event", "ascending"), ("hour", "ascending"), ("seq", "ascending")],
    )
    table = table.take(order).combine_chunks()
    events = names.take(order)
    hours = pc.floor_temporal(table.column("time").chunk(0), unit="hour").cast(pa.int64())
    ends = sorted(
        {
            int(e)
            for column in (events, hours)
            for e in pc.run_end_encode(column).run_ends.to_pylist()
        }
    )
    out: list[tuple[tuple[str, str], pa.Table]] = []
    start = 0
    for end in ends:
        hour = datetime.fromtimestamp(hours[start].as_py() / 1000, tz=UTC)
        out.append(
            ((events[start].as_py(), hour.strftime("%Y-%m-%d-%H")), table.slice(start, end - start))
        )
        start = end
    return out


# Dictionary pages only where values repeat (ids, texts and JSON would waste the effort), and
# statistics on the columns readers prune by; both measured to halve the Parquet encode time.
_DICTIONARY = [
    "source_id", "type", "vendor_event", "event", "channel", "campaign_id",
    *(n for n in schema.PROPERTY_COLUMNS if n not in ("email", "phone", "url", "subject")),
]  # fmt: skip
_STATISTICS = ["seq", "time", "received_at"]


def parquet_bytes(table: pa.Table, meta: dict[str, str]) -> bytes:
    """A Parquet file (zstd) carrying the schema version in its key-value metadata."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=[c for c in _DICTIONARY if c in table.column_names],
        write_statistics=[c for c in _STATISTICS if c in table.column_names],
    )
    return bytes(sink.getvalue().to_pybytes())


def column_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as Python values; timestamps as epoch milliseconds (what Avro stores), not
    datetime objects, which cost more to make than the rest of the record."""
    if column.type == schema.TS:
        column = column.cast(pa.int64())
    values: list[Any] = column.to_pylist()
    return values


def _currents_records(table: pa.Table, fields: dict[str, str]) -> list[dict[str, Any]]:
    """The rows as Currents records of ``fields``, built column by column."""
    props = [_loads(p) if p else {} for p in table.column("properties").to_pylist()]
    contacts = [c or "" for c in table.column("contact").to_pylist()]
    renames = schema.currents_fields()
    special: dict[str, list[Any]] = {
        "id": table.column("id").to_pylist(),
        "time": [None if t is None else seconds(t) for t in column_values(table.column("time"))],
        "external_user_id": table.column("user_id").to_pylist(),
        "user_id": [p.get("braze_id") for p in props],
        "campaign_id": [
            c or p.get("campaign_id")
            for c, p in zip(table.column("campaign_id").to_pylist(), props, strict=True)
        ],
        "email_address": [
            p.get("email") or (c if "@" in c else None)
            for p, c in zip(props, contacts, strict=True)
        ],
        "phone_number": [
            p.get("phone") or (c if c.startswith("+") else None)
            for p, c in zip(props, contacts, strict=True)
        ],
    }
    columns = []
    for name, kind in fields.items():
        if name in special:
            values = special[name]
        else:
            key = renames.get(name, name)
            values = [p.get(key) for p in props]
        columns.append([v if type(v) is str else _coerce(v, kind) for v in values])
    names = list(fields)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def seconds(ms: int) -> int:
    """Whole seconds of epoch milliseconds, truncated toward zero (as ``int(timestamp())``)."""
    return ms // 1000 if ms >= 0 else -(-ms // 1000)


def _coerce(value: Any, kind: str) -> Any:
    if value is None:
        return None
    try:
        if kind == "long":
            return int(value)
        if kind == "boolean":
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        if kind == "double":
            return float(value)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else _dumps(value).decode()


def avro_bytes(table: pa.Table, event_type: str, meta: dict[str, str]) -> bytes:
    """An Avro container file: Currents' record shape where it has one, else the generic one."""
    avro_schema = schema.avro_schema(event_type)
    currents = schema.currents_types().get(event_type)
    if currents is not None:
        records = _currents_records(table, schema.currents_shapes()[currents])
    else:
        names = table.column_names
        columns = [column_values(table.column(n)) for n in names]
        records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    buf = io.BytesIO()
    fastavro.writer(
        buf, fastavro.parse_schema(avro_schema), records, metadata=meta, codec="deflate"
    )
    return buf.getvalue()


def write_files(fs: AbstractFileSystem, items: list[tuple[str, bytes]]) -> None:
    """Write every file of a range durably before the caller moves the cursor.

    Local files go to ``<name>.tmp`` and are fsynced (in parallel: the filesystem's journal
    groups them), renamed, and their directories fsynced; object stores get one PUT per
    file (atomic per object). A full disk is a TransientError naming the path; no partial file
    is left under a final name.
    """
    path = ""
    try:
        if isinstance(fs, LocalFileSystem):
            temps: list[str] = []
            try:
                for path, data in items:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    temps.append(path + ".tmp")
                    with open(path + ".tmp", "wb") as f:
                        f.write(data)
                _fsync_all(temps)
                for path, _ in items:
                    os.replace(path + ".tmp", path)
                _fsync_all(sorted({os.path.dirname(p) for p, _ in items}))
            except OSError:
                for tmp in temps:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                raise
        else:
            for path, data in items:
                fs.pipe_file(path, data)
    except OSError as exc:
        no_space = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "no space left on device" if no_space else f"{type(exc).__name__}: {exc}"
        raise TransientError(
            f"export could not write {path}: {reason}",
            path=path,
            errno=exc.errno,
            retry="free space and rerun; the cursor did not move",
        ) from None


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
    """Write one file durably (see ``write_files``)."""
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
