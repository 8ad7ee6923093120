"""The Consent page in Chromium: upload a CSV with bad rows, download the error report, fix it,
upload it again; counts and a person's audit history equal the API's."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.live import LiveServer
from tests.waiting import eventually
from tests.web.console import api, audit, browser, signed_in, start_server

__all__ = ["browser"]
CSV = (
    "email,email_subscription_status,email_group:newsletter,first_name\r\n"
    "ann@example.com,subscribed,subscribed,Ann\r\n"
    "bob@example,subscribed,,Bob\r\n"
    "cy@example.com,maybe,,Cy\r\n"
    "dee@example.com,unsubscribed,,Dee\r\n"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory.mktemp("consent"))


def upload(page: Page, live: LiveServer, path: Path) -> dict[str, Any]:
    """Upload through the form (confirmed), wait on the import page until it is done."""
    page.goto(live.url + "/consent")
    page.get_by_label("CSV file (UTF-8)").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/consent/imports/*")
    page.wait_for_selector("#import[data-status=done]", timeout=30_000)
    import_id = page.url.rsplit("/", 1)[1]
    found: dict[str, Any] = api(live, f"/api/imports/{import_id}")
    for key in ("rows_read", "rows_applied", "rows_rejected"):
        assert page.locator(f"[data-metric={key}]").inner_text() == str(found[key]), key
    return found


def settled_counts(live: LiveServer, total: int) -> list[dict[str, Any]]:

    def counts() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = api(live, "/api/subscriptions/counts")["counts"]
        return found if sum(c["total"] for c in found) >= total else None

    return eventually(counts, timeout=30, interval=0.2, what=f"{total} subscriptions counted")


def test_csv_upload_report_fix_and_reupload(
    live: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    page = signed_in(browser, live)
    page.goto(live.url + "/consent")
    audit(page, shots, "consent-empty")
    with page.expect_download() as template:
        page.get_by_role("link", name="template CSV").click()
    assert Path(template.value.path()).read_text().startswith("user_id,anonymous_id,email,phone")

    first = tmp_path / "people.csv"
    first.write_text(CSV)
    result = upload(page, live, first)
    assert (result["rows_applied"], result["rows_rejected"]) == (2, 2)
    audit(page, shots, "consent-import")
    with page.expect_download() as report:
        page.locator("#error-report").click()
    rows = list(csv.DictReader(io.StringIO(Path(report.value.path()).read_text())))
    found = {(r["row_number"], r["column"]) for r in rows}  # row 1 is the header
    assert {("3", "email"), ("4", "email_subscription_status")} <= found
    assert {r["row_number"] for r in rows} == {"3", "4"}
    assert all(r["reason"] for r in rows)
    rows = list({r["row_number"]: r for r in rows}.values())  # one line per row to fix

    # Fix the two rows in the report itself and upload it again.
    fixed = tmp_path / "fixed.csv"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        r["email"] = r["email"].replace("bob@example", "bob@example.com")
        r["email_subscription_status"] = r["email_subscription_status"].replace(
            "maybe", "subscribed"
        )
        writer.writerow(r)
    fixed.write_text(out.getvalue())
    again = upload(page, live, fixed)
    assert (again["rows_applied"], again["rows_rejected"]) == (2, 0)
    assert page.locator("#error-report").count() == 0

    counts = settled_counts(live, 5)
    page.goto(live.url + "/consent")
    email = next(c for c in counts if c["channel"] == "email" and c["group"] is None)
    assert (email["subscribed"], email["unsubscribed"]) == (3, 1)
    for c in counts:
        row = page.locator(f"tr[data-counts='{c['channel']}/{c['group'] or ''}']")
        for state in ("subscribed", "unsubscribed", "did_not_subscribe", "total"):
            assert row.locator(f"[data-metric={state}]").inner_text() == str(c[state]), state
    assert page.locator("#imports tbody tr").count() == 2

    # A person: current states and the audit trail, as the API has them.
    page.get_by_label("Email, phone or user id").fill("ann@example.com")
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("#audit")
    history = api(live, "/api/subscriptions/history?contact=ann@example.com")["history"]
    assert page.locator("#audit tbody tr").count() == len(history) == 2
    assert page.locator("#states [data-metric=status]").all_inner_texts() == ["subscribed"] * 2
    audit(page, shots, "consent-person")
    page.context.close()
