"""A CSV import after an erasure: the erased person's rows are dropped and reported as erased by
row number only, whichever way the rows come in (CLI, HTTP, a chunk stored behind the check)."""

from __future__ import annotations

import csv
import hashlib
import io
import time
import zlib
from pathlib import Path

from fastapi.testclient import TestClient

from engagehub import registry
from engagehub.consent import batches, store
from engagehub.consent.csv_import import ERASED_REASON, CsvImport, run_import
from engagehub.privacy import erase, suppress
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage.base import Connection
from tests.consent.test_import_records import Errors

T0 = 1_767_000_000_000
GONE = ("u-erin", "erin.erased@example.com", "+14155550123")
TEXT = (
    "user_id,email,phone,email_subscription_status,first_name\r\n"
    "u-kept,kept@example.com,,subscribed,Kim\r\n"
    f"{GONE[0]},,,,Erin\r\n"  # the user id alone names her
    f"u-new,{GONE[1]},,subscribed,Erin\r\n"  # a new user id, her erased email
    f",,{GONE[2]},,Erin\r\n"  # her phone number
    "u-kept2,kept2@example.com,,unsubscribed,Lee\r\n"
)


def erased_world(db: Database, settings: Settings) -> None:
    """Erin was imported once, then erased."""
    first = (
        "user_id,email,phone,email_subscription_status\r\n"
        f"{GONE[0]},{GONE[1]},{GONE[2]},subscribed\r\n"
    )
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        job = CsvImport(hashlib.sha256(first.encode()).hexdigest(), T0, "US")
        run_import(
            io.BytesIO(first.encode()),
            job,
            lambda changes: set(),
            lambda item: batches.append(conn, builtin, item, T0),
            Errors(),
        )
        job.close()
        run_until_caught_up(conn, registry.processors(settings))
        eid = erase.request(conn, GONE[0], "GDPR art. 17", "test", "US")["id"]
    assert erase.run(db, eid, settings)["state"] == "done"


def mentions(conn: Connection, tables: tuple[str, ...]) -> list[str]:
    """Tables (decompressed import rows included) holding any of Erin's identifiers."""
    found = []
    for table in tables:
        for row in conn.execute(f"SELECT * FROM {table}").fetchall():
            text = repr(tuple(row))
            if any(v in text for v in GONE):
                found.append(table)
    for (payload,) in conn.execute("SELECT payload FROM import_batches").fetchall():
        if any(v.encode() in zlib.decompress(bytes(payload)) for v in GONE):
            found.append("import_batches")
    return found


TABLES = ("subscription_states", "subscription_history", "profile_identities", "import_errors")


def test_cli_import_drops_and_reports_erased_rows(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    from tests.cli.test_cli import run

    erased_world(db, settings)
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    out = run(database_url, "import", "subscriptions", str(path)).stdout
    assert "rejected 3" in out, out
    blob = (tmp_path / "people.errors.csv").read_text(encoding="utf-8")
    report = list(csv.reader(io.StringIO(blob)))
    assert [r[:4] for r in report[1:]] == [
        ["3", "", "", ERASED_REASON],
        ["4", "", "", ERASED_REASON],
        ["5", "", "", ERASED_REASON],
    ]
    assert not [v for v in (*GONE, "Erin") if v in blob], blob  # row numbers only
    with db.session() as conn:
        assert mentions(conn, TABLES) == []
        states = conn.execute(
            "SELECT contact, status FROM subscription_states ORDER BY contact"
        ).fetchall()
        assert [tuple(s) for s in states] == [
            ("kept2@example.com", "unsubscribed"),
            ("kept@example.com", "subscribed"),
        ]


def test_http_import_reports_erased_rows_without_their_values(
    client: TestClient, db: Database, settings: Settings, admin: dict[str, str]
) -> None:
    erased_world(db, settings)
    r = client.post(
        "/api/imports", files={"file": ("p.csv", TEXT.encode(), "text/csv")}, headers=admin
    )
    assert r.status_code == 202, r.text
    status: dict[str, object] = {}
    for _ in range(500):
        status = client.get(r.json()["url"], headers=admin).json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.02)
    assert status["status"] == "done", status
    assert (status["rows_applied"], status["rows_rejected"]) == (2, 3), status
    report = client.get(str(status["errors_url"]), headers=admin).text
    lines = list(csv.reader(io.StringIO(report)))
    assert [line[0] for line in lines[1:]] == ["3", "4", "5"]
    assert {line[3] for line in lines[1:]} == {ERASED_REASON}
    assert not [v for v in (*GONE, "Erin") if v in report], report
    with db.session() as conn:
        assert mentions(conn, TABLES) == []


def test_a_chunk_stored_past_the_check_loses_the_erased_rows_under_the_append_lock(
    db: Database, settings: Settings
) -> None:
    """An import validated before the erasure (no check, or a race): the append's suppression
    screen drops the rows from the stored chunk, and nothing of Erin is derived."""
    erased_world(db, settings)
    before = suppress.IMPORT_ROWS_SUPPRESSED._value.get()
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        job = CsvImport(hashlib.sha256(TEXT.encode()).hexdigest(), T0 + 1, "US")
        errors = Errors()
        run_import(
            io.BytesIO(TEXT.encode()),
            job,
            lambda changes: set(),
            lambda item: batches.append(conn, builtin, item, T0),
            errors,
        )  # no ``erased`` check: the rows reach the store
        job.close()
        assert not errors.rows
        assert suppress.IMPORT_ROWS_SUPPRESSED._value.get() == before + 3
        run_until_caught_up(conn, registry.processors(settings))
        assert mentions(conn, TABLES) == []
        assert conn.scalar("SELECT COUNT(*) FROM subscription_states") == 2
        assert conn.scalar("SELECT SUM(rows_count) FROM import_batches") == 2
        assert suppress.blocked(conn, [GONE[1], GONE[2]]) == {GONE[1], GONE[2]}


def test_screen_knows_the_import_record_name() -> None:
    assert suppress._IMPORTED == batches.IMPORTED
