"""``engagehub destinations`` and ``engagehub export`` run as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

from engagehub.storage import Database
from tests.destinations.conftest import add_events
from tests.destinations.receiver import Receiver


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The CLI is backend-agnostic (storage runs on both elsewhere): SQLite keeps this fast."""
    return f"sqlite:///{tmp_path}/cli.db"


def run(url: str, *args: str, allow: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENGAGEHUB_DATABASE_URL": url, "COLUMNS": "200"}
    env["ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS"] = "true" if allow else "false"
    return subprocess.run(
        [sys.executable, "-m", "engagehub", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_destinations_cli(database_url: str, db: Database, hook: Receiver) -> None:
    refused = run(database_url, "destinations", "add", "h", "--kind", "webhook", "--url",
                  hook.url, "--secret", "s", allow=False)  # fmt: skip
    assert refused.returncode == 1
    assert "error[invalid_payload]" in refused.stderr
    assert hook.url in refused.stderr
    assert "loopback" in refused.stderr
    added = run(database_url, "destinations", "add", "h", "--kind", "webhook", "--url", hook.url,
                "--secret", "whsec_c2VjcmV0", "--events", "Email *", "--batch", "2",
                "--from-start")  # fmt: skip
    assert added.returncode == 0, added.stderr
    add_events(db, 8)
    delivered = run(database_url, "destinations", "deliver")
    assert delivered.returncode == 0, delivered.stderr
    assert len(hook.received) == 2
    status = orjson.loads(run(database_url, "destinations", "status", "--json").stdout)
    assert status[0]["name"] == "h"
    assert status[0]["delivered"] == 4
    assert status[0]["lag"] == 0
    bad_time = run(database_url, "destinations", "replay", "h", "--from", "yesterday-ish")
    assert bad_time.returncode == 1
    assert "yesterday-ish" in bad_time.stderr


def test_export_cli(database_url: str, db: Database, tmp_path: Path) -> None:
    add_events(db, 12)
    out = tmp_path / "lake"
    done = run(database_url, "export", str(out), "--events", "Email *")
    assert done.returncode == 0, done.stderr
    assert "exported 6 events" in done.stdout
    assert "(layout currents)" in done.stdout  # a new target gets the Currents-true layout
    again = run(database_url, "export", str(out), "--events", "Email *")
    assert "exported 0 events" in again.stdout
    sql = f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet', union_by_name = true)"
    (count,) = duckdb.sql(sql).fetchall()[0]
    assert count == 6
    assert {p.name for p in out.iterdir()} >= {"event_type=users.messages.email.Delivery"}
    flat = run(database_url, "export", str(tmp_path / "flat"), "--layout", "canonical")
    assert "(layout canonical)" in flat.stdout
    assert (tmp_path / "flat" / "event_type=Email Delivered").is_dir()
    wrong = run(database_url, "export", str(out), "--format", "csv")
    assert wrong.returncode == 1
    assert "csv" in wrong.stderr
