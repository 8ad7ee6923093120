"""CSV import validation without a database: conflicting rows across and within chunks, and
status values remembered per file without letting a file of junk grow the memory."""

from __future__ import annotations

import io

from engagehub.consent import csv_import
from engagehub.consent.csv_import import CsvImport, RowError, run_import


class Errors:
    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def start(self, header: list[str]) -> None:
        self.header = header

    def add(self, error: RowError) -> None:
        self.errors.append(error)


def _run(text: str, chunk: int) -> tuple[csv_import.ImportReport, list[RowError], CsvImport]:
    job = CsvImport("ab" * 32, 1_764_000_000_000)
    sink = Errors()
    try:
        report = run_import(
            io.BytesIO(text.encode()), job, lambda changes: set(), lambda c: 1, sink, chunk=chunk
        )
    finally:
        job.close()
    return report, sink.errors, job


def test_the_first_row_of_a_contact_point_wins_within_and_across_chunks() -> None:
    text = (
        "user_id,email,email_subscription_status,email_group:news\n"
        "u1,a@example.com,subscribed,subscribed\n"  # row 2
        "u2,a@example.com,subscribed,\n"  # row 3: the same status again, fine
        "u3,a@example.com,unsubscribed,\n"  # row 4: conflicts with row 2, same chunk
        "u4,b@example.com,unsubscribed,\n"  # row 5
        "u5,b@example.com,unsubscribed,subscribed\n"  # row 6: first for b's group
        "u6,b@example.com,subscribed,\n"  # row 7: conflicts with row 5, later chunk
        "u7,A@Example.com,,unsubscribed\n"  # row 8: the group of a, normalized: conflict
    )
    for chunk in (1, 2, 1000):
        report, errors, _ = _run(text, chunk)
        assert (report.rows_read, report.rows_applied, report.rows_rejected) == (7, 4, 3)
        assert [(e.row_number, e.column, e.value, e.reason) for e in errors] == [
            (
                4,
                "email_subscription_status",
                "unsubscribed",
                "conflicts with row 2 (subscribed) for the same contact",
            ),
            (
                7,
                "email_subscription_status",
                "subscribed",
                "conflicts with row 5 (unsubscribed) for the same contact",
            ),
            (
                8,
                "email_group:news",
                "unsubscribed",
                "conflicts with row 2 (subscribed) for the same contact",
            ),
        ], chunk


def test_a_rejected_row_does_not_claim_its_contact_points() -> None:
    text = (
        "user_id,email,email_subscription_status,sms_subscription_status,phone\n"
        "u1,a@example.com,subscribed,,\n"
        "u2,a@example.com,unsubscribed,subscribed,+14155550100\n"  # rejected: conflict on email
        "u3,c@example.com,,unsubscribed,+14155550100\n"  # so its phone is still free
    )
    report, errors, _ = _run(text, 1000)
    assert report.rows_rejected == 1
    assert [e.row_number for e in errors] == [3]


def test_status_values_are_checked_per_value_and_the_memory_is_bounded() -> None:
    rows = [f"u{i},p{i}@example.com,junk-{i}" for i in range(csv_import._STATUS_CACHE + 50)]
    rows += [f"v{i},q{i}@example.com,SUBSCRIBED" for i in range(20)]
    text = "user_id,email,email_subscription_status\n" + "\n".join(rows) + "\n"
    report, errors, job = _run(text, 500)
    assert report.rows_rejected == csv_import._STATUS_CACHE + 50
    assert report.rows_applied == 20
    assert errors[-1].value == f"junk-{csv_import._STATUS_CACHE + 49}"
    assert "junk-1073" in errors[-1].reason  # each message names its own value
    assert len(job._statuses) <= csv_import._STATUS_CACHE
