"""Parquet/Avro export in the Currents layout, read back with DuckDB and fastavro."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import duckdb
import fastavro
import pyarrow.parquet as pq
import pytest
import yaml

from engagehub.errors import PayloadError
from engagehub.export import runner, schema
from engagehub.model import IncomingEvent
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.timeutil import now_ms
from tests.conftest import make_source
from tests.destinations.conftest import add_events
from tests.taxonomy.test_seeds import _seed


def export(db: Database, out: Path | str, **kwargs: object) -> runner.ExportResult:
    with db.session() as conn:
        return runner.run(conn, str(out), **kwargs)  # type: ignore[arg-type]


def counts(out: Path) -> list[tuple[str, int, int]]:
    return duckdb.sql(
        f"SELECT event_type, count(*), count(DISTINCT id) FROM read_parquet('{out}/**/*.parquet',"
        " hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()


def test_layout_schema_and_duckdb(db: Database, tmp_path: Path) -> None:
    add_events(db, 40)
    result = export(db, tmp_path)
    assert (result.after, result.upto, result.events) == (0, 40, 40)
    assert counts(tmp_path) == [
        ("Channel Subscription Updated", 10, 10),
        ("Email Delivered", 10, 10),
        ("Email Opened", 10, 10),
        ("SMS Delivered", 10, 10),
    ]
    path = (
        tmp_path
        / "event_type=Email Delivered/date=2025-11-24-16/seq-000000000001-000000000040.parquet"
    )
    assert path.exists()
    assert not glob.glob(f"{tmp_path}/**/*.tmp", recursive=True)
    table = pq.read_table(path)
    assert table.schema.remove_metadata() == schema.SCHEMA
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["engagehub.schema_version"] == str(schema.SCHEMA_VERSION)
    assert meta["engagehub.event_type"] == "Email Delivered"
    row = duckdb.sql(
        f"SELECT user_id, email, time, properties FROM read_parquet('{path}') ORDER BY seq LIMIT 1"
    ).fetchall()[0]
    assert row is not None
    assert row[0] == "u0"
    assert row[1] == "p0@example.com"
    assert row[2].isoformat().startswith("2025-11-24T16:00:00")
    assert '"n":0' in row[3]


def test_incremental_runs_write_each_event_once(db: Database, tmp_path: Path) -> None:
    add_events(db, 10)
    export(db, tmp_path)
    assert export(db, tmp_path).events == 0
    add_events(db, 6, start=10)
    second = export(db, tmp_path)
    assert (second.after, second.upto, second.events) == (10, 16, 6)
    assert sum(c for _, c, _ in counts(tmp_path)) == 16
    total, distinct = duckdb.sql(
        f"SELECT count(*), count(DISTINCT seq) FROM read_parquet('{tmp_path}/**/*.parquet')"
    ).fetchall()[0]
    assert total == distinct == 16


def test_since_and_event_filter(db: Database, tmp_path: Path) -> None:
    add_events(db, 12)
    result = export(db, tmp_path, since=4, events="Email *")
    assert result.events == 4  # seq 5..12: two Email Delivered, two Email Opened
    assert [r[0] for r in counts(tmp_path)] == ["Email Delivered", "Email Opened"]
    with pytest.raises(PayloadError, match="format"):
        export(db, tmp_path, fmt="csv")


def seed_fields(currents_type: str) -> list[str]:
    """Field names of one users.* shape, read straight from the seed document."""
    text = _seed("braze-currents-message-engagement-events.md")
    block = text.split(f": {currents_type}\n", 1)[1].split("```", 1)[0]
    return [
        line.strip().split('"')[1] for line in block.splitlines() if line.strip().startswith('"')
    ]


def test_avro_has_currents_shapes(db: Database, tmp_path: Path) -> None:
    add_events(db, 8)
    export(db, tmp_path, fmt="avro")
    (path,) = glob.glob(f"{tmp_path}/event_type=Email Delivered/*/*.avro")
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        records = list(reader)
        assert reader.metadata["engagehub.schema_version"] == str(schema.SCHEMA_VERSION)
        names = [field["name"] for field in reader.writer_schema["fields"]]
    assert names == seed_fields("users.messages.email.Delivery")
    assert records[0]["email_address"] == "p0@example.com"
    assert records[0]["external_user_id"] == "u0"
    assert records[0]["time"] == 1_764_000_000
    assert len(records) == 2
    # events Currents has no shape for use the generic columns
    (generic,) = glob.glob(f"{tmp_path}/event_type=Channel Subscription Updated/*/*.avro")
    with open(generic, "rb") as f:
        assert [
            x["name"] for x in fastavro.reader(f).writer_schema["fields"]
        ] == schema.SCHEMA.names


@pytest.mark.parametrize("layout", ["canonical", "currents"])
@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_client_values_of_the_wrong_type_never_stop_an_export(
    db: Database, tmp_path: Path, layout: str, fmt: str
) -> None:
    """Push Sent has Currents' boolean ad_tracking_enabled and string send_id: a client's text
    in the boolean (or number in the text) is converted or dropped, and the file is written
    (a canonical Avro file once failed on it, and with it every later export of the target)."""
    src = make_source(db, "app")[0].id
    values = ["yes", "true", True, 7, None]
    events = [
        IncomingEvent(
            dedup_key=f"p{i}",
            event_time=1_764_000_000_000,
            raw="{}",
            event="Push Sent",
            channel="push",
            user_id="u",
            message_id=f"m{i}",
            properties={"ad_tracking_enabled": value, "send_id": 12},
        )
        for i, value in enumerate(values)
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(src, 1, events)])
    result = export(db, tmp_path, fmt=fmt, layout=layout)
    assert result.events == len(values)
    (path,) = glob.glob(f"{tmp_path}/**/*.{fmt}", recursive=True)
    if fmt == "avro":
        with open(path, "rb") as f:
            got = [(r["ad_tracking_enabled"], r["send_id"]) for r in fastavro.reader(f)]
    elif layout == "canonical":  # the generic columns: the properties as their JSON
        assert pq.read_table(path).num_rows == len(values)
        return
    else:
        table = pq.read_table(path)
        got = list(
            zip(
                table.column("ad_tracking_enabled").to_pylist(),
                table.column("send_id").to_pylist(),
                strict=True,
            )
        )
    assert got == [(False, "12"), (True, "12"), (True, "12"), (False, "12"), (None, "12")]


def test_currents_data_matches_seed() -> None:
    shapes = schema.currents_shapes()
    assert len(shapes) >= 30
    for name in ("users.messages.email.Open", "users.behaviors.subscriptiongroup.StateChange"):
        assert list(shapes[name]) == seed_fields(name)
    data = yaml.safe_load((Path(schema.__file__).parent / "data/currents.yaml").read_text())
    assert data == shapes


def test_subscription_states_snapshot(db: Database, tmp_path: Path) -> None:
    with db.session() as conn, conn.transaction():
        for i, status in enumerate(("subscribed", "unsubscribed")):
            conn.execute(
                "INSERT INTO subscription_states (contact, channel, group_name, status, "
                "event_time, seq, source, updated_at) VALUES (?, 'email', '', ?, ?, ?, 'api', ?)",
                (f"s{i}@example.com", status, 1_764_000_000_000, i + 1, now_ms()),
            )
    first = export(db, tmp_path)
    assert first.snapshot is not None
    assert first.snapshot.endswith("subscription_states/snapshot-000000000002.parquet")
    rows = duckdb.sql(
        f"SELECT contact, status FROM read_parquet('{first.snapshot}') ORDER BY contact"
    ).fetchall()
    assert rows == [("s0@example.com", "subscribed"), ("s1@example.com", "unsubscribed")]
    assert export(db, tmp_path).snapshot is None  # unchanged since: no new snapshot


def test_bad_output_url(db: Database) -> None:
    with pytest.raises(PayloadError, match="nosuchproto"):
        export(db, "nosuchproto://bucket/x")
    assert not os.path.exists("nosuchproto:")
