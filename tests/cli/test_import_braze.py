"""``engagehub import braze-currents``: Avro files in several codecs; re-import adds nothing."""

from __future__ import annotations

from pathlib import Path

import fastavro

from engagehub.storage import Database
from engagehub.storage import events as log
from tests.cli.test_cli import run

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "EmailOpen",
        "namespace": "com.braze.currents",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "user_id", "type": "string"},
            {"name": "external_user_id", "type": ["null", "string"], "default": None},
            {"name": "time", "type": "int"},
            {"name": "timezone", "type": ["null", "string"], "default": None},
            {"name": "campaign_id", "type": ["null", "string"], "default": None},
            {"name": "message_variation_id", "type": ["null", "string"], "default": None},
            {"name": "dispatch_id", "type": ["null", "string"], "default": None},
            {"name": "email_address", "type": "string"},
            {"name": "user_agent", "type": ["null", "string"], "default": None},
        ],
    }
)


def write(folder: Path, codec: str, start: int, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "id": f"open-{i}",
            "user_id": f"b{i}",
            "external_user_id": f"user-{i}",
            "time": 1772445600 + i,
            "timezone": "UTC",
            "campaign_id": "cmp-1",
            "message_variation_id": "v1",
            "dispatch_id": "d-1",
            "email_address": f"u{i}@example.com",
            "user_agent": None,
        }
        for i in range(start, start + count)
    ]
    with (folder / f"{codec}.avro").open("wb") as fh:
        fastavro.writer(fh, SCHEMA, records, codec=codec)


def test_import_braze_currents_avro(database_url: str, db: Database, tmp_path: Path) -> None:
    root = tmp_path / "currents" / "event_type=users.messages.email.Open"
    write(root / "date=2026-03-01-10", "null", 0, 50)
    write(root / "date=2026-03-01-11", "deflate", 50, 50)
    write(root / "date=2026-03-02-10", "bzip2", 100, 25)
    write(root / "date=2026-03-02-10", "xz", 125, 25)
    run(database_url, "sources", "add", "bz", "--kind", "braze", "--secret", "t0ken")
    out = run(
        database_url,
        "import",
        "braze-currents",
        str(tmp_path / "currents"),
        "--source",
        "bz",
        "--since",
        "2026-03-01-11",
    ).stdout
    assert "3 files" in out
    assert "stored 100" in out
    out = run(
        database_url, "import", "braze-currents", str(tmp_path / "currents"), "--source", "bz"
    ).stdout
    assert "4 files" in out
    assert "stored 50 · already there 100" in out
    with db.session() as conn:
        events = log.read_range(conn, 0, 10**9)
    assert len(events) == 150
    assert {e.event for e in events} == {"Email Opened"}
    assert events[0].message_id == "d-1:user-50"
    assert events[0].contact == "u50@example.com"
    bad = tmp_path / "event_type=users.messages.email.Open" / "broken.avro"
    bad.parent.mkdir()
    bad.write_bytes(b"not avro at all")
    result = run(database_url, "import", "braze-currents", str(bad), "--source", "bz", ok=False)
    assert result.returncode == 1
    assert "not an Avro file" in result.stderr
