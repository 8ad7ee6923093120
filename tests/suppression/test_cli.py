"""``engagehub suppressions ...`` as a real subprocess against a migrated database."""

from __future__ import annotations

from pathlib import Path

from engagehub.storage import Database
from tests.cli.test_cli import run


def test_add_list_export_import_remove(database_url: str, db: Database, tmp_path: Path) -> None:
    out = run(database_url, "suppressions", "add", "Zed@Example.com", "--reason", "hard_bounce")
    assert "suppressed zed@example.com (email): hard_bounce" in out.stdout
    run(database_url, "suppressions", "add", "+1 415 555 0103", "--channel", "sms")
    listing = run(database_url, "suppressions", "list").stdout
    assert "zed@example.com" in listing
    assert "+14155550103" in listing
    exported = run(database_url, "suppressions", "export").stdout.splitlines()
    assert exported[0].startswith("contact,channel,reason")
    assert len(exported) == 3
    run(database_url, "suppressions", "remove", "zed@example.com")
    run(database_url, "suppressions", "remove", "+14155550103", "--channel", "sms")
    assert "zed@example.com" not in run(database_url, "suppressions", "list").stdout
    file = tmp_path / "list.csv"
    file.write_text("\n".join([*exported, "bad,email,,,"]) + "\n")
    imported = run(database_url, "suppressions", "import", str(file)).stdout
    assert "applied 2, rejected 1" in imported
    assert "row 4" in imported
    assert "hard_bounce" in run(database_url, "suppressions", "list", "--channel", "email").stdout
    bad = run(database_url, "suppressions", "add", "x@example.com", "--channel", "fax", ok=False)
    assert "unknown channel 'fax'" in bad.stderr
