"""``engagehub import subscriptions`` on real files: error reports, dry runs, re-uploads."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson

from engagehub.consent import store
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.cli.test_cli import run

ROWS = (
    "user_id,email,phone,email_subscription_status,sms_subscription_status,nickname\r\n"
    'u1,ada@example.com,+14155550100,subscribed,subscribed,"Ada\r\nthe first"\r\n'
    "u2,bob@example.com,,did-not-subscribe,,Bob\r\n"
    "u3,,,subscribed,,Nobody\r\n"
    "u4,ada@example.com,,unsubscribed,,Twin\r\n"
    "u5,eve@example.com,12345,,subscribed,Eve\r\n"
)


def test_import_report_fix_and_reupload(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(ROWS, encoding="utf-8")
    dry = run(database_url, "import", "subscriptions", str(path), "--dry-run").stdout
    assert "would apply 2" in dry
    with db.session() as conn:
        assert log.head(conn) == 0
    out = run(database_url, "import", "subscriptions", str(path)).stdout
    assert "applied 2 (3 changes" in out
    assert "rejected 3" in out
    report = tmp_path / "subs.errors.csv"
    with report.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["row_number", "column", "value", "reason"]
    assert [r[0] for r in rows[1:]] == ["4", "5", "6"]
    with db.session() as conn:
        assert store.status(conn, "ada@example.com", "email") == "subscribed"
        assert store.status(conn, "bob@example.com", "email") == "did_not_subscribe"
        head = log.head(conn)
    again = run(database_url, "import", "subscriptions", str(path)).stdout
    assert "0 new events" in again
    with db.session() as conn:
        assert log.head(conn) == head
    # Fix the report (give u3 an email, fix Eve's phone) and upload it as it is.
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(rows[0])
        for r in rows[1:]:
            if r[4] == "u3":
                r[5] = "nobody@example.com"
            if r[4] == "u5":
                r[6] = "+14155550123"
            if r[4] != "u4":
                writer.writerow(r)
    out = run(database_url, "import", "subscriptions", str(fixed)).stdout
    assert "rejected 0" in out
    with db.session() as conn:
        assert store.status(conn, "+14155550123", "sms") == "subscribed"
        assert store.status(conn, "nobody@example.com", "email") == "subscribed"


def test_template_and_bad_files(database_url: str, db: Database, tmp_path: Path) -> None:
    header = run(database_url, "template", "subscriptions").stdout.strip()
    assert header.startswith("user_id,anonymous_id,email,phone,email_subscription_status")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,nickname\nada@example.com,Jos\xe9\n".encode("latin-1"))
    bad = run(database_url, "import", "subscriptions", str(latin), ok=False)
    assert bad.returncode == 1
    assert "not UTF-8" in bad.stderr
    noid = tmp_path / "noid.csv"
    noid.write_text("nickname\nAda\n")
    bad = run(database_url, "import", "subscriptions", str(noid), ok=False)
    assert "no identifier column" in bad.stderr


def test_profiles_show_after_import(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(ROWS, encoding="utf-8")
    run(database_url, "import", "subscriptions", str(path))
    out = run(database_url, "profiles", "show", "ADA@example.com").stdout
    assert "user_id: u1" in out
    assert "phone: +14155550100" in out
    assert "subscribed" in out
    data = orjson.loads(run(database_url, "profiles", "show", "u1", "--json").stdout)
    assert data["traits"]["nickname"] == "Ada\r\nthe first"
    assert {(s["channel"], s["status"]) for s in data["subscriptions"]} >= {
        ("email", "subscribed"),
        ("sms", "subscribed"),
    }
    missing = run(database_url, "profiles", "show", "nobody", ok=False)
    assert missing.returncode == 1
    assert "nobody" in missing.stderr
