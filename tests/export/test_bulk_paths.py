"""The export's bulk paths: a range read in parallel pieces, encoders in threads, Avro records
built column by column — each must give exactly what the plain path gives."""

from __future__ import annotations

import glob
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest

from engagehub.export import currents, files, runner, schema
from engagehub.model import IncomingEvent
from engagehub.storage import Database, arrow
from engagehub.storage import events as log
from tests.conftest import make_source
from tests.destinations.conftest import add_events


def test_a_range_read_in_pieces_is_the_range(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    add_events(db, 47)
    with db.session() as conn:
        whole = arrow.read_table(
            conn, f"SELECT {schema.LOG_SQL} FROM events ORDER BY seq", [], schema.READ_SCHEMA
        )
        monkeypatch.setattr(runner, "ENCODERS", 3)
        monkeypatch.setattr(runner, "READ_PIECE", 5)
        pieces = runner.read_range(conn, None, 0, 47)
        tail = runner.read_range(conn, "Email *", 10, 47)
    assert pieces.column(0).num_chunks == 3  # really read in three pieces
    assert pieces.combine_chunks().equals(whole.combine_chunks())
    assert tail.column("seq").to_pylist() == [
        s
        for s, e in zip(
            whole.column("seq").to_pylist(), whole.column("event").to_pylist(), strict=True
        )
        if s > 10 and e.startswith("Email ")
    ]


def test_threaded_encoders_write_the_same_files(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_events(db, 30)
    outputs = {}
    for encoders in (1, 4):
        monkeypatch.setattr(runner, "ENCODERS", encoders)
        out = tmp_path / str(encoders)
        with db.session() as conn:
            runner.run(conn, str(out), fmt="avro")
        outputs[encoders] = {
            Path(p).relative_to(out).as_posix(): list(
                fastavro.reader(io.BytesIO(Path(p).read_bytes()))
            )
            for p in glob.glob(f"{out}/**/*.avro", recursive=True)
        }
    assert len(outputs[1]) == 4
    assert outputs[1] == outputs[4]


def _avro(table: pa.Table, event_type: str) -> list[Any]:
    data = currents.canonical_avro(table, event_type, {}) or files.avro_bytes(table, event_type, {})
    return list(fastavro.reader(io.BytesIO(data)))


def test_avro_records_from_columns(db: Database) -> None:
    src = make_source(db, "feed")[0].id
    when = 1_764_000_123_456
    events = [
        IncomingEvent(
            dedup_key="a",
            event_time=when,
            raw="{}",
            event="Email Delivered",
            channel="email",
            user_id="u1",
            contact="+14155550100",
            campaign_id="",
            properties={"campaign_id": "c9", "braze_id": "b1", "subject": 42, "email": None},
        ),
        IncomingEvent(
            dedup_key="b",
            event_time=-1_500,  # before 1970: seconds truncate toward zero, as before
            raw="{}",
            event="Email Delivered",
            channel="email",
            contact="x@example.com",
            properties={},
        ),
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(src, when, events)])
        read = arrow.read_table(
            conn, f"SELECT {schema.LOG_SQL} FROM events ORDER BY seq", [], schema.READ_SCHEMA
        )
    table = files.build_table(read)
    first, second = _avro(table, "Email Delivered")
    assert first["time"] == when // 1000
    assert (first["external_user_id"], first["user_id"]) == ("u1", "b1")
    assert first["campaign_id"] == "c9"  # empty column: the property
    assert first["email_address"] is None  # the contact is a phone number
    assert second["time"] == -1
    assert second["email_address"] == "x@example.com"
    # a generic record keeps every column, times as the instants they were
    (generic, _) = _avro(table, "Custom Thing")
    assert generic["time"] == datetime.fromtimestamp(when / 1000, tz=UTC)
    assert generic["seq"] == read.column("seq")[0].as_py()
    assert generic["subject"] == "42"  # a promoted property that is no string: JSON text
