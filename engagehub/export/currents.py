"""The Currents-true layout (``engagehub export --layout currents``): what Braze sent comes back
as Braze wrote it.

- An event that came from a Braze source is written under ``event_type=<its Braze type>`` (the
  type in its dedup key ``<event_type>:<id>``) as the record Braze sent: Braze's ``id`` and every
  original field value, in the field set and types of Braze's own Avro schema for that type
  (``data/currents_schemas.json``, from Braze's published Currents v10 examples).
- An event of another vendor goes under the Braze type of its canonical event (the first Braze
  type the mapping sends to it), its fields filled from canonical properties.
- Every other event goes under ``event_type=engagehub.<name>`` (canonical name, else the
  vendor's, else the call type) with the generic engagehub schema.

Both formats carry the same records: Avro with the Braze schema (every field nullable), Parquet
with the matching Arrow types.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engagehub.export import avro, files, schema
from engagehub.storage import logread
from engagehub.storage.base import Connection
from engagehub.vendors import braze

_LIMIT = {"int": 1 << 31, "long": 1 << 63}
"""Avro ``int`` and ``long`` hold values in [-limit, limit)."""
OTHER_PREFIX = "engagehub."
"""Folder prefix of events that have no Braze type."""
_ARROW = {
    "string": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


@lru_cache(maxsize=1)
def braze_schemas() -> dict[str, list[tuple[str, Any]]]:
    """Braze event type -> [(field, Avro type)] of its Currents schema."""
    text = resources.files("engagehub.export").joinpath("data/currents_schemas.json").read_text()
    data = orjson.loads(text)["types"]
    return {name: [(f, t) for f, t in fields] for name, fields in data.items()}


@lru_cache(maxsize=1)
def braze_type_of() -> dict[str, str]:
    """Canonical event -> the Braze type written for it (first one in the mapping with a schema)."""
    return schema.first_braze_types(braze_schemas())


def braze_rows(conn: Connection, after: int, upto: int) -> dict[int, tuple[str, str]]:
    """seq -> (dedup key, raw record) of the range's events from Braze sources."""
    found = logread.raw_of_kind(conn, "braze", after, upto)
    return {
        int(seq): (str(key), str(raw))
        for seq, key, raw in zip(
            found.column("seq").to_pylist(),
            found.column("dedup_key").to_pylist(),
            found.column("raw").to_pylist(),
            strict=True,
        )
    }


def folder_names(table: pa.Table, from_braze: dict[int, tuple[str, str]]) -> pa.Array:
    """Each row's ``event_type=`` folder in the Currents layout: a Braze event's own type, else
    the Braze type of its canonical event, else ``engagehub.<name_of>``."""
    known = braze_type_of()
    event = table.column("event").combine_chunks()
    mapped = pc.take(
        pa.array(list(known.values()), pa.string()),
        pc.index_in(event, pa.array(list(known), pa.string())),
    )
    named = event
    for fallback in ("vendor_event", "type"):  # eventjson.name_of: "" counts as no name
        named = pc.if_else(_filled(named), named, table.column(fallback).combine_chunks())
    other = pc.binary_join_element_wise(pa.scalar(OTHER_PREFIX), named, "")
    if from_braze:
        seqs = pa.array(list(from_braze), pa.int64())
        types = pa.array([key.partition(":")[0] for key, _ in from_braze.values()], pa.string())
        own = pc.take(types, pc.index_in(table.column("seq").combine_chunks(), seqs))
        return pc.coalesce(own, mapped, other)
    return pc.coalesce(mapped, other)


def _filled(values: pa.Array) -> pa.Array:
    """Whether each value is a non-empty string (Python's truthiness of a text)."""
    return pc.fill_null(pc.not_equal(values, ""), False)


def is_braze_type(folder: str) -> bool:
    """Whether a folder holds Braze-shaped records (else the generic engagehub schema)."""
    return folder in braze_schemas()


def arrow_table(
    part: pa.Table,
    folder: str,
    from_braze: dict[int, tuple[str, str]],
    parsed: pa.Table | None = None,
) -> pa.Table:
    """The partition as a table of Braze records of ``folder``'s schema (Parquet's input)."""
    found = columns(part, folder, from_braze, parsed)
    if found is not None:
        return found
    return pa.Table.from_pylist(records(part, folder, from_braze), schema=arrow_schema(folder))


def avro_file(
    part: pa.Table,
    folder: str,
    from_braze: dict[int, tuple[str, str]],
    meta: dict[str, str],
    parsed: pa.Table | None = None,
) -> bytes:
    """The partition as an Avro container of Braze records of ``folder``'s schema: encoded
    from the columns (``export.avro``) where ``columns`` built them, else with fastavro."""
    found = columns(part, folder, from_braze, parsed)
    if found is not None:
        data = avro.container(found, _avro_schema(folder), meta)
        if data is not None:
            return data
    recs = found.to_pylist() if found is not None else records(part, folder, from_braze)
    return avro_bytes(recs, folder, meta)


def records(
    part: pa.Table, folder: str, from_braze: dict[int, tuple[str, str]]
) -> list[dict[str, Any]]:
    """The partition's rows as Braze records of ``folder``'s schema, row by row (Braze's own
    records, and the reference ``columns`` must equal)."""
    fields = braze_schemas()[folder]
    out = []
    for row in _rows(part):
        found = from_braze.get(row["seq"])
        if found is not None:
            raw = orjson.loads(found[1])
            if isinstance(raw, dict) and isinstance(raw.get("properties") or raw.get("user"), dict):
                raw = braze.flatten(raw)[1]  # the HTTP connector's nested form
            source: dict[str, Any] = raw if isinstance(raw, dict) else {}
        else:
            source = _from_canonical(row)
        out.append({name: _value(source.get(name), kind) for name, kind in fields})
    return out


def columns(
    part: pa.Table,
    folder: str,
    from_braze: dict[int, tuple[str, str]],
    parsed: pa.Table | None = None,
) -> pa.Table | None:
    """``records`` built column by column for events of other vendors: each field from its log
    column or canonical property (Arrow's JSON reader over ``properties``), kept as is where
    its Arrow type already is the field's type; a field that is not (a number where Braze has
    a string, a date-like text Arrow took for a timestamp) is converted row by row as
    ``records`` does. None (use ``records``) when the partition holds Braze's own records or
    its properties do not parse as columns. ``parsed``: the properties already parsed (with
    the range's), else parsed here."""
    if from_braze and pc.any(pc.is_in(part.column("seq"), pa.array(list(from_braze)))).as_py():
        return None
    fields = braze_schemas()[folder]
    return _columns(part, fields, _value, arrow_schema(folder), parsed)


def canonical_avro(
    part: pa.Table, event: str, meta: dict[str, str], parsed: pa.Table | None = None
) -> bytes | None:
    """The canonical layout's Avro file of an event type Currents also has (its shape from
    ``schema.currents_shapes``), values by the same rule as the Currents layout's (``_value``:
    a value the field's type cannot take is no value, never a failed export); encoded from
    columns where they build, else per record. None for a type Currents has no shape for
    (``files.avro_bytes`` writes the generic one)."""
    shape = schema.currents_types().get(event)
    if shape is None:
        return None
    fields = list(schema.currents_shapes()[shape].items())
    avro_schema = schema.avro_schema(event)
    arrow = pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in fields])
    built = _columns(part, fields, _value, arrow, parsed)
    if built is not None:
        data = avro.container(built, avro_schema, meta)
        if data is not None:
            return data
    recs = built.to_pylist() if built is not None else canonical_records(part, fields)
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro_schema), recs, metadata=meta, codec="deflate")
    return buf.getvalue()


def canonical_records(part: pa.Table, fields: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Records of ``fields`` for events of any vendor, row by row (the reference the column
    path must equal)."""
    rows = (_from_canonical(row) for row in _rows(part))
    return [{name: _value(src.get(name), kind) for name, kind in fields} for src in rows]


def _columns(
    part: pa.Table,
    fields: list[tuple[str, Any]],
    convert: Callable[[Any, Any], Any],
    arrow: pa.Schema,
    parsed: pa.Table | None = None,
) -> pa.Table | None:
    """Records of ``fields`` from other vendors' events, column by column (see ``columns``);
    ``convert(value, kind)`` is the row rule for a field whose Arrow type is not the field's."""
    if parsed is None:
        parsed = files.parse_properties(part.column("properties"))
    if parsed is None:
        return None
    count = part.num_rows
    present = set(parsed.column_names)  # a new list at each access of the property
    sources: list[dict[str, Any]] = []

    def log(name: str) -> pa.Array:
        return part.column(name).combine_chunks()

    def prop(key: str) -> pa.Array:
        if key not in present:
            return pa.nulls(count)
        return parsed.column(key).combine_chunks()

    contact = log("contact")
    renames = schema.currents_fields()
    arrays = []
    for name, kind in fields:
        value: pa.Array | None
        if name == "id":
            value = log("id")
        elif name == "time":
            value = pc.divide(log("time").cast(pa.int64()), 1000)  # truncates toward zero
        elif name == "external_user_id":
            value = log("user_id")
        elif name == "user_id":
            value = prop("braze_id")
        elif name == "campaign_id":
            own, given = log("campaign_id"), _typed(prop("campaign_id"), "string")
            value = None if given is None else pc.if_else(_filled(own), own, given)
        elif name in ("email_address", "phone_number"):
            email = name == "email_address"
            given = _typed(prop("email" if email else "phone"), "string")
            looks = pc.match_substring(contact, "@") if email else pc.starts_with(contact, "+")
            own = pc.if_else(pc.fill_null(looks, False), contact, pa.nulls(count, pa.string()))
            value = None if given is None else pc.if_else(_filled(given), given, own)
        else:
            value = prop(renames.get(name, name))
        typed = None if value is None else _typed(value, kind)
        if typed is None:
            if not sources:
                sources.extend(_from_canonical(row) for row in _rows(part))
            typed = pa.array([convert(s.get(name), kind) for s in sources], _arrow_type(kind))
        arrays.append(typed)
    return pa.Table.from_arrays(arrays, schema=arrow)


def _typed(values: pa.Array, kind: Any) -> pa.Array | None:
    """``values`` as the field's Arrow type when that changes no value (``_value``'s rules),
    else None."""
    target = _arrow_type(kind)
    found = values.type
    if found == pa.null():
        return pa.nulls(len(values), target)
    if found == target:
        return values
    try:
        if kind in ("int", "long") and pa.types.is_integer(found):
            return values.cast(target)  # a safe cast: out of range raises
        if kind in ("float", "double") and (
            pa.types.is_integer(found) or pa.types.is_floating(found)
        ):
            return values.cast(target)
    except pa.ArrowInvalid:
        return None
    return None


def _arrow_type(kind: Any) -> pa.DataType:
    return pa.list_(pa.string()) if isinstance(kind, dict) else _ARROW[kind]


def arrow_schema(folder: str, meta: dict[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of ``folder``'s records (types matching its Avro schema)."""
    fields = [pa.field(f, _arrow_type(kind)) for f, kind in braze_schemas()[folder]]
    return pa.schema(fields, metadata=meta)


_USED = ("seq", "id", "time", "user_id", "campaign_id", "contact", "properties")


def _rows(part: pa.Table) -> list[dict[str, Any]]:
    """The columns a record is made of, per row; times as epoch milliseconds (a datetime
    object per row cost more than the rest of the record)."""
    columns = [files.column_values(part.column(name)) for name in _USED]
    return [dict(zip(_USED, row, strict=True)) for row in zip(*columns, strict=True)]


def _from_canonical(row: dict[str, Any]) -> dict[str, Any]:
    """Braze field values of an event from another vendor (canonical properties renamed)."""
    props = orjson.loads(row["properties"]) if row["properties"] else {}
    contact = row["contact"] or ""
    out = {field: props.get(canonical) for field, canonical in schema.currents_fields().items()}
    out.update({k: v for k, v in props.items() if k not in out})
    out.update(
        {
            "id": row["id"],
            "time": None if row["time"] is None else files.seconds(row["time"]),
            "external_user_id": row["user_id"],
            "user_id": props.get("braze_id"),
            "campaign_id": row["campaign_id"] or props.get("campaign_id"),
            "email_address": props.get("email") or (contact if "@" in contact else None),
            "phone_number": props.get("phone") or (contact if contact.startswith("+") else None),
        }
    )
    return out


def _value(value: Any, kind: Any) -> Any:
    """``value`` in the field's Avro type; Braze's own values pass unchanged."""
    if value is None:
        return None
    if isinstance(kind, dict):  # arrays of strings
        items = value if isinstance(value, list) else [value]
        return [None if v is None else files.text(v) for v in items]
    try:
        if kind in ("int", "long"):
            number = value if isinstance(value, int) and not isinstance(value, bool) else int(value)
            return number if -_LIMIT[kind] <= number < _LIMIT[kind] else None  # no room: none
        if kind in ("float", "double"):
            return float(value)
        if kind == "boolean":
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
    except (TypeError, ValueError):
        return None
    return files.text(value)


def _avro_schema(folder: str) -> dict[str, Any]:
    namespace, _, name = folder.rpartition(".")
    return {
        "type": "record",
        "name": name,
        "namespace": namespace,
        "doc": f"Braze Currents {folder} (engagehub export, every field nullable)",
        "fields": [
            {"name": f, "type": ["null", kind], "default": None}
            for f, kind in braze_schemas()[folder]
        ],
    }


def avro_bytes(recs: list[dict[str, Any]], folder: str, meta: dict[str, str]) -> bytes:
    """An Avro container of Braze records."""
    buf = io.BytesIO()
    parsed = fastavro.parse_schema(_avro_schema(folder))
    fastavro.writer(buf, parsed, recs, metadata=meta, codec="deflate")
    return buf.getvalue()


def parquet_bytes(table: pa.Table, meta: dict[str, str]) -> bytes:
    """A Parquet file of Braze records (``arrow_table``)."""
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=files.codecs(table))
    return bytes(sink.getvalue().to_pybytes())
