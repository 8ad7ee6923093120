"""The Currents-true layout is the default for a new export target; a target written before
keeps the layout it was written in (its cursor says which), so nobody's warehouse changes shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from engagehub.errors import PayloadError
from engagehub.export import runner
from engagehub.model import IncomingEvent
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import make_source

T0 = 1_764_000_000_000


def _append(db: Database, start: int, count: int) -> None:
    with db.session() as conn:
        src = conn.scalar("SELECT id FROM sources WHERE name = 'sg'")
    if src is None:
        src = make_source(db, "sg", "sendgrid")[0].id
    events = [
        IncomingEvent(
            dedup_key=f"d{i}",
            event_time=T0 + i,
            raw="{}",
            vendor_event="delivered",
            event="Email Delivered",
            channel="email",
            user_id=f"u{i}",
            contact=f"p{i}@example.com",
            properties={"email": f"p{i}@example.com"},
        )
        for i in range(start, start + count)
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(int(src), T0, events)])


def _folders(root: Path) -> set[str]:
    return {p.name.removeprefix("event_type=") for p in root.iterdir() if p.is_dir()}


def test_a_new_target_is_written_in_the_currents_layout(db: Database, tmp_path: Path) -> None:
    _append(db, 0, 3)
    with db.session() as conn:
        first = runner.run(conn, str(tmp_path / "new"), "avro", layout=None)
        _append(db, 3, 2)
        second = runner.run(conn, str(tmp_path / "new"), "avro", layout=None)
    assert (first.layout, first.events, second.layout, second.events) == (
        "currents",
        3,
        "currents",
        2,
    )
    assert first.target.endswith(":currents")
    assert second.target == first.target
    assert _folders(tmp_path / "new") == {"users.messages.email.Delivery"}


def test_an_existing_canonical_target_keeps_writing_canonical(db: Database, tmp_path: Path) -> None:
    out = str(tmp_path / "old")
    _append(db, 0, 3)
    with db.session() as conn:
        before = runner.run(conn, out, "parquet", layout="canonical")  # as runs did before
        _append(db, 3, 2)
        after = runner.run(conn, out, "parquet", layout=None)
    assert after.layout == "canonical"
    assert after.target == before.target
    assert (after.after, after.upto, after.events) == (before.upto, before.upto + 2, 2)
    assert _folders(tmp_path / "old") == {"Email Delivered"}


def test_an_existing_currents_target_keeps_currents_and_layouts_can_be_asked_for(
    db: Database, tmp_path: Path
) -> None:
    _append(db, 0, 2)
    with db.session() as conn:
        runner.run(conn, str(tmp_path / "c"), "parquet", layout="currents")
        _append(db, 2, 1)
        again = runner.run(conn, str(tmp_path / "c"), "parquet", layout=None)
        asked = runner.run(conn, str(tmp_path / "k"), "parquet", layout="canonical")
        with pytest.raises(PayloadError) as bad:
            runner.run(conn, str(tmp_path / "x"), "parquet", layout="braze")
    assert (again.layout, again.events) == ("currents", 1)
    assert (asked.layout, asked.events) == ("canonical", 3)
    assert bad.value.details["value"] == "braze"
