"""The export schemas: one typed Arrow schema for every event type, Currents' Avro shapes."""

from __future__ import annotations

from collections.abc import Container
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import pyarrow as pa

from engagehub import yamltext
from engagehub.taxonomy import get_taxonomy

SCHEMA_VERSION = 1
"""Bump when a column is added, removed or changes type; files record it in their metadata."""

TS = pa.timestamp("ms", tz="UTC")

# Log columns, in the order read from ``events``.
LOG_FIELDS: list[tuple[str, pa.DataType]] = [
    ("seq", pa.int64()),
    ("id", pa.string()),
    ("source_id", pa.int64()),
    ("type", pa.string()),
    ("vendor_event", pa.string()),
    ("event", pa.string()),
    ("channel", pa.string()),
    ("user_id", pa.string()),
    ("anonymous_id", pa.string()),
    ("contact", pa.string()),
    ("message_id", pa.string()),
    ("campaign_id", pa.string()),
    ("time", TS),
    ("received_at", TS),
]
LOG_SQL = (
    "seq, event_id, source_id, type, vendor_event, event, channel, user_id, anonymous_id, "
    "contact, message_id, campaign_id, event_time, received_at, properties"
)

PROPERTY_COLUMNS = (
    "email",
    "phone",
    "campaign_name",
    "journey_id",
    "journey_name",
    "step_id",
    "variation_id",
    "send_id",
    "dispatch_id",
    "subject",
    "url",
    "platform",
    "timezone",
    "bounce_type",
    "error_code",
    "subscription_group",
    "subscription_status",
    "audience_id",
    "audience_name",
)
"""Canonical properties promoted to their own string columns (all are also in ``properties``)."""

READ_SCHEMA = pa.schema(
    [pa.field(name, kind) for name, kind in LOG_FIELDS] + [pa.field("properties", pa.string())]
)
"""The columns of ``LOG_SQL`` as read from the log (``storage.arrow.read_table``)."""

SCHEMA = pa.schema(
    [pa.field(name, kind) for name, kind in LOG_FIELDS]
    + [pa.field(name, pa.string()) for name in PROPERTY_COLUMNS]
    + [pa.field("properties", pa.string())]
)

SUBSCRIPTION_SCHEMA = pa.schema(
    [
        pa.field("contact", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("group_name", pa.string()),
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("source", pa.string()),
        pa.field("event_time", TS),
        pa.field("seq", pa.int64()),
        pa.field("updated_at", TS),
    ]
)


def metadata(event_type: str, after: int, upto: int) -> dict[str, str]:
    """File metadata: schema and taxonomy versions, the event type and the seq range."""
    return {
        "engagehub.schema_version": str(SCHEMA_VERSION),
        "engagehub.taxonomy_version": str(get_taxonomy().version),
        "engagehub.event_type": event_type,
        "engagehub.seq_range": f"{after + 1}-{upto}",
    }


@lru_cache(maxsize=1)
def currents_shapes() -> dict[str, dict[str, str]]:
    """Currents event type -> {field: avro type}, from the seed (``data/currents.yaml``)."""
    text = resources.files("engagehub.export").joinpath("data/currents.yaml").read_text()
    data: dict[str, dict[str, str]] = yamltext.safe_load(text)
    return data


@lru_cache(maxsize=1)
def currents_types() -> dict[str, str]:
    """Canonical event -> the Currents ``users.*`` type it comes from (first one wins)."""
    return first_braze_types(currents_shapes())


def first_braze_types(known: Container[str]) -> dict[str, str]:
    """Canonical event -> the first Braze type the Braze mapping sends to it among ``known``
    (the seed's shapes here, Braze's published schemas for the Currents layout)."""
    out: dict[str, str] = {}
    for name, rule in get_taxonomy().vendors["braze"].rules.items():
        if rule.event and name in known:
            out.setdefault(rule.event, name)
    return out


@lru_cache(maxsize=1)
def currents_fields() -> dict[str, str]:
    """Currents field -> canonical property name (Braze mapping reversed; same name otherwise)."""
    return dict(get_taxonomy().vendors["braze"].properties)


def _avro_type(kind: str) -> Any:
    return ["null", kind]


@cache
def avro_schema(event_type: str) -> dict[str, Any]:
    """Avro record schema: Currents' shape for its users.* types, else the generic columns."""
    currents = currents_types().get(event_type)
    if currents is not None:
        namespace, _, name = currents.rpartition(".")
        fields = [
            {"name": f, "type": _avro_type(t), "default": None}
            for f, t in currents_shapes()[currents].items()
        ]
        return {
            "type": "record",
            "name": name,
            "namespace": f"engagehub.currents.{namespace}",
            "doc": f"{event_type} as Braze Currents {currents}",
            "fields": fields,
        }
    fields = []
    for field in SCHEMA:
        if field.type == TS:
            kind: Any = {"type": "long", "logicalType": "timestamp-millis"}
        elif field.type == pa.int64():
            kind = "long"
        else:
            kind = "string"
        fields.append({"name": field.name, "type": ["null", kind], "default": None})
    return {
        "type": "record",
        "name": "Event",
        "namespace": "engagehub.export",
        "doc": f"{event_type} (engagehub export schema v{SCHEMA_VERSION})",
        "fields": fields,
    }
