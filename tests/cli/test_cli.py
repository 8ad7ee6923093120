"""The ``engagehub`` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from engagehub.storage import Database
from engagehub.storage import events as log

CASES = Path(__file__).resolve().parents[1] / "cases"


def run(database_url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENGAGEHUB_DATABASE_URL": database_url, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "engagehub", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_sources_add_and_list(database_url: str, db: Database) -> None:
    out = run(database_url, "sources", "add", "web", "--kind", "segment").stdout
    key = out.split("write key:")[1].strip()
    assert len(key) >= 20
    out = run(
        database_url,
        "sources",
        "add",
        "feed",
        "--kind",
        "crossengage",
        "--write-key",
        "my-own-key-123",
    ).stdout
    assert "my-own-key-123" in out
    listed = run(database_url, "sources", "list").stdout
    assert "web" in listed
    assert "crossengage" in listed
    assert key not in listed
    bad = run(database_url, "sources", "add", "x", "--kind", "fax", ok=False)
    assert bad.returncode == 1
    assert "unknown source kind 'fax'" in bad.stderr
    dup = run(database_url, "sources", "add", "web", "--kind", "segment", ok=False)
    assert dup.returncode == 1
    assert "error[conflict]" in dup.stderr


def test_import_crossengage_is_idempotent(database_url: str, db: Database, tmp_path: Path) -> None:
    run(database_url, "sources", "add", "ce", "--kind", "crossengage")
    errors = tmp_path / "errors.jsonl"
    feed = str(CASES / "crossengage" / "feed.json")
    first = run(
        database_url, "import", "crossengage", feed, "--source", "ce", "--errors", str(errors)
    )
    assert "read 5 · stored 3 · already there 0 · rejected 2" in first.stdout
    lines = [orjson.loads(line) for line in errors.read_bytes().splitlines()]
    assert [(x["index"], x["error"]["details"]["field"]) for x in lines] == [
        (3, "timestamp"),
        (4, "id"),
    ]
    again = run(database_url, "import", "crossengage", feed, "--source", "ce")
    assert "stored 0 · already there 3" in again.stdout
    with db.session() as conn:
        assert log.head(conn) == 3
    wrong = run(database_url, "import", "crossengage", feed, "--source", "nope", ok=False)
    assert wrong.returncode == 1
    assert "no source named 'nope'" in wrong.stderr


def test_import_rejects_a_file_that_is_not_json(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    run(database_url, "sources", "add", "ce", "--kind", "crossengage")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "u", "event": "Message Sent", "timestamp": "2022-01-01"}, {oops')
    result = run(database_url, "import", "crossengage", str(bad), "--source", "ce", ok=False)
    assert result.returncode == 1
    assert "not a valid JSON array" in result.stderr


def test_events_tail_json_and_taxonomy(database_url: str, db: Database) -> None:
    run(database_url, "sources", "add", "ce", "--kind", "crossengage")
    run(
        database_url,
        "import",
        "crossengage",
        str(CASES / "crossengage" / "feed.json"),
        "--source",
        "ce",
    )
    lines = run(database_url, "events", "tail", "--json", "--limit", "2").stdout.splitlines()
    assert [orjson.loads(x)["event"] for x in lines] == ["Email Delivered", "Email Marked as Spam"]
    table = run(database_url, "events", "tail").stdout
    assert "Email Sent" in table
    assert "ABC12345" in table
    tax = orjson.loads(run(database_url, "taxonomy", "--json").stdout)
    assert any(e["name"] == "WhatsApp Message Read" for e in tax["events"])
    assert run(database_url, "--version").stdout.startswith("engagehub ")
    assert "schema is up to date" in run(database_url, "migrate").stdout
