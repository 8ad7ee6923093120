"""Formula injection: every CSV engagehub writes is safe to open in a spreadsheet."""

from __future__ import annotations

import ast
import csv
import io
import time
from pathlib import Path

from fastapi.testclient import TestClient

import engagehub
from engagehub.csvsafe import FORMULA_STARTERS, unneutralize

# Header cells and values an attacker controls through a CSV upload or an event.
HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1)", "-1+2", "@A1", "\tx", "＝1+1", "'=already"]


def test_no_module_writes_csv_without_the_neutraliser() -> None:
    """``csv.writer`` may only be used inside ``engagehub.csvsafe``: exports, reports and any
    CSV added later go through ``csvsafe.writer``."""
    root = Path(engagehub.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "csvsafe.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("writer", "DictWriter")
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"use engagehub.csvsafe.writer instead of csv.writer: {offenders}"


def test_import_error_report_neutralises_headers_and_values(
    client: TestClient, admin: dict[str, str]
) -> None:
    header = ["email", "email_subscription_status", *HOSTILE]
    row = ["not-an-email", "subscribed", *HOSTILE]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, row])
    r = client.post(
        "/api/imports",
        files={"file": ("evil.csv", buffer.getvalue().encode(), "text/csv")},
        headers=admin,
    )
    assert r.status_code == 202, r.text
    status: dict[str, object] = {}
    for _ in range(250):
        status = client.get(r.json()["url"], headers=admin).json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.02)
    assert status["status"] == "done", status
    report = client.get(str(status["errors_url"]), headers=admin)
    rows = list(csv.reader(io.StringIO(report.text)))
    assert len(rows) >= 2, rows  # the header and at least one error line
    for cell in (c for r in rows for c in r):
        assert not cell.startswith(FORMULA_STARTERS), cell
    # values come back exactly once unquoted; header names as the importer read them (stripped,
    # and a leading apostrophe before a formula taken as our own mark)
    header_names = [unneutralize(h.strip()) for h in HOSTILE]
    restored = [unneutralize(c) for c in rows[0]]
    assert [h for h in header_names if h not in restored] == [], restored
    for line in rows[1:]:
        restored = [unneutralize(c) for c in line]
        assert [h for h in HOSTILE if h not in restored] == [], restored
