"""``--layout currents``: Braze's events come back as Braze wrote them (type, id, every field),
in Avro and Parquet, and our own Braze importer reads the export back to the same events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro
import pyarrow.parquet as pq
import pytest

from engagehub.export import currents, runner
from engagehub.model import IncomingEvent
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.vendors import braze
from tests.cases import CASES
from tests.conftest import make_source

AVRO = sorted((CASES / "braze" / "currents" / "avro").glob("*.avro"))
T0 = 1_764_000_000_000
_COMPARED = ("event", "vendor_event", "user_id", "contact", "event_time", "message_id",
             "campaign_id", "properties")  # fmt: skip


def _examples() -> list[IncomingEvent]:
    out = []
    for path in AVRO:
        with path.open("rb") as fh:
            out.extend(braze.normalize(path.stem, r) for r in fastavro.reader(fh))  # type: ignore[arg-type]
    return out


def _other(key: str, event: str | None, vendor: str) -> IncomingEvent:
    return IncomingEvent(
        dedup_key=key,
        event_time=T0,
        raw="{}",
        vendor_event=vendor,
        event=event,
        channel="email",
        user_id="u1",
        contact="ada@example.com",
        campaign_id="c-1",
        properties={"email": "ada@example.com", "campaign_name": "Spring"},
    )


def _seed(db: Database) -> list[IncomingEvent]:
    bz, _ = make_source(db, "bz", "braze", secret="currents-bearer-secret")
    sg, _ = make_source(db, "sg", "sendgrid")
    examples = _examples()
    with db.session() as conn:
        log.append(conn, [log.Batch(bz.id, T0, examples)])
        others = [_other("d1", "Email Delivered", "delivered"), _other("o1", None, "Order Done")]
        log.append(conn, [log.Batch(sg.id, T0, others)])
    return examples


def _view(ev: IncomingEvent) -> dict[str, Any]:
    return {name: getattr(ev, name) for name in _COMPARED}


def _read_back(root: Path, folders: set[str], fmt: str) -> dict[str, IncomingEvent]:
    """The Braze folders of an export through the importer's own functions."""
    found: dict[str, IncomingEvent] = {}
    for folder in sorted(folders):
        for path in sorted((root / f"event_type={folder}").rglob(f"*.{fmt}")):
            if fmt == "avro":
                ((_, event_type),) = braze.avro_files(path)
                with path.open("rb") as fh:
                    rows = list(fastavro.reader(fh))
            else:
                event_type, rows = folder, pq.read_table(path).to_pylist()
            for record in rows:
                ev = braze.normalize(event_type, record)  # type: ignore[arg-type]
                found[ev.dedup_key] = ev
    return found


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_braze_events_round_trip_through_our_importer(
    db: Database, tmp_path: Path, fmt: str
) -> None:
    examples = _seed(db)
    out = tmp_path / fmt
    with db.session() as conn:
        result = runner.run(conn, str(out), fmt, layout="currents")  # type: ignore[arg-type]
    assert result.events == len(examples) + 2
    folders = {p.name.removeprefix("event_type=") for p in out.iterdir()}
    assert {p.stem for p in AVRO} <= folders
    assert "engagehub.Order Done" in folders
    braze_only = {f for f in folders if not f.startswith(currents.OTHER_PREFIX)}
    back = _read_back(out, braze_only, fmt)
    for ev in examples:
        assert ev.dedup_key in back, ev.dedup_key
        assert _view(back[ev.dedup_key]) == _view(ev), ev.dedup_key
    # Another vendor's event under the Braze type of its canonical event, from its properties.
    delivered = [e for e in back.values() if e.vendor_event == "users.messages.email.Delivery"]
    ours = [e for e in delivered if e.user_id == "u1"]
    assert len(ours) == 1
    assert (ours[0].event, ours[0].contact, ours[0].campaign_id) == (
        "Email Delivered",
        "ada@example.com",
        "c-1",
    )


def test_braze_values_are_kept_as_braze_sent_them(db: Database, tmp_path: Path) -> None:
    _seed(db)
    with db.session() as conn:
        runner.run(conn, str(tmp_path), "avro", layout="currents")
    (path,) = (tmp_path / "event_type=users.behaviors.subscription.GlobalStateChange").rglob(
        "*.avro"
    )
    with path.open("rb") as fh:
        (record,) = list(fastavro.reader(fh))
    original = AVRO[[p.stem for p in AVRO].index(path.parent.parent.name.split("=")[1])]
    with original.open("rb") as fh:
        (sent,) = list(fastavro.reader(fh))
    assert record == sent  # Braze's id, canvas_id, "Subscribed" (not lower-cased)...
