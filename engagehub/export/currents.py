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
from functools import lru_cache
from importlib import resources
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from engagehub.eventjson import name_of
from engagehub.export import files, schema
from engagehub.storage.base import Connection
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors import braze

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
    out: dict[str, str] = {}
    for name, rule in get_taxonomy().vendors["braze"].rules.items():
        if rule.event and name in braze_schemas():
            out.setdefault(rule.event, name)
    return out


def braze_rows(conn: Connection, after: int, upto: int) -> dict[int, tuple[str, str]]:
    """seq -> (dedup key, raw record) of the range's events from Braze sources."""
    rows = conn.all(
        "SELECT seq, dedup_key, raw FROM events WHERE seq > ? AND seq <= ? AND source_id IN "
        "(SELECT id FROM sources WHERE kind = 'braze')",
        (after, upto),
    )
    return {int(r["seq"]): (str(r["dedup_key"]), str(r["raw"])) for r in rows}


def folder_names(table: pa.Table, from_braze: dict[int, tuple[str, str]]) -> pa.Array:
    """Each row's ``event_type=`` folder in the Currents layout."""
    known = braze_type_of()
    out = []
    for seq, event, vendor, kind in zip(
        table.column("seq").to_pylist(),
        table.column("event").to_pylist(),
        table.column("vendor_event").to_pylist(),
        table.column("type").to_pylist(),
        strict=True,
    ):
        if seq in from_braze:
            out.append(from_braze[seq][0].partition(":")[0])
        elif event in known:
            out.append(known[event])
        else:
            out.append(OTHER_PREFIX + name_of(event, vendor, kind))
    return pa.array(out, pa.string())


def is_braze_type(folder: str) -> bool:
    """Whether a folder holds Braze-shaped records (else the generic engagehub schema)."""
    return folder in braze_schemas()


def records(
    part: pa.Table, folder: str, from_braze: dict[int, tuple[str, str]]
) -> list[dict[str, Any]]:
    """The partition's rows as Braze records of ``folder``'s schema."""
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
        return [None if v is None else v if isinstance(v, str) else _text(v) for v in items]
    try:
        if kind in ("int", "long"):
            return value if isinstance(value, int) and not isinstance(value, bool) else int(value)
        if kind in ("float", "double"):
            return float(value)
        if kind == "boolean":
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else _text(value)


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


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


def parquet_bytes(recs: list[dict[str, Any]], folder: str, meta: dict[str, str]) -> bytes:
    """A Parquet file of Braze records (Arrow types matching the Avro schema)."""
    fields = [
        pa.field(f, pa.list_(pa.string()) if isinstance(kind, dict) else _ARROW[kind])
        for f, kind in braze_schemas()[folder]
    ]
    arrow_schema = pa.schema(fields, metadata=meta)
    table = pa.Table.from_pylist(recs, schema=arrow_schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())
