"""CSV validation in columns gives exactly the per-row reference: row by row (values, errors),
and end to end (states, history, profiles, stored rows, the error report), on both backends."""

from __future__ import annotations

import csv
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from engagehub import registry
from engagehub.bench.csv_import import write_file
from engagehub.consent import batches, store
from engagehub.consent.csv_columns import plain_emails
from engagehub.consent.csv_import import (
    CsvErrorReport,
    CsvImport,
    file_digest,
    refused_indexes,
    run_import,
)
from engagehub.contacts import normalize_email
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from tests.conftest import ADMIN_SECRET

T0 = 1_772_445_600_000
HEADER = (
    "user_id,email,phone,email_subscription_status,sms_subscription_status,"
    "whatsapp_subscription_status,email_group:newsletter,id:crm,nickname\n"
)
# Every kind of cell the fast path must either decide exactly or hand to the reference.
TRICKY = [
    "u1,Ada@Example.COM,+14155550100,SUBSCRIBED,Subscribed,,,c1,Ada",
    "u2,  bob@example.com ,(415) 555-0101, unsubscribed ,did not subscribe,,,,Bob",
    "u3,josé@exämple.com,415-555-0102,did-not-subscribe,,,,,José",
    "u4,用户@例子.广告,+442079460958,subscribed,,subscribed,,,",
    'u5,"""quoted""@example.com",whatsapp:+14155550103,subscribed,subscribed,,,,',
    "u6,a@b.test,,subscribed,,,,,",
    "u7,x@localhost,,subscribed,,,,,",
    "u8,dash@ex--ample.com,,subscribed,,,,,",
    "u9," + "l" * 65 + "@example.com,,subscribed,,,,,",
    "u10,dot..dot@example.com,,subscribed,,,,,",
    "u11,'=cmd@example.com,,subscribed,,,,,'=SUM(A1)",
    "u12,plain@example.com,'+14155550104,subscribed,subscribed,,,,'@nick",
    "u13,nbsp@example.com\u00a0,\u00a0+14155550105,subscribed,,,,,",
    "u14,ctl@example.com\x1c,,subscribed,,,,,",
    "u15,maybe@example.com,,maybe,,,,,",
    "u16,,,subscribed,,,,,",
    ",,,,,,,,nobody",
    "u18,short@example.com,12,,subscribed,,,,",
    "u19,extra@example.com,,subscribed,,,,,,one too many",
    "u20,few@example.com",
    "u21,nophone@example.com,,,subscribed,,,,",
    "u22,gb@example.com,020 7946 0959,,subscribed,,,,",
    "u23,zero@example.com,+4402079460960,,subscribed,,,,",
    "u24,UPPER@EXAMPLE.ORG,+33612345678,,,subscribed,,,",
    "u25,ada@example.com,,unsubscribed,,,,,conflict with u1",
    "u26,ünïcode@exämple.com,,,,,subscribed,,",
    "u27,a.b+tag@sub.example.co.uk,+8613800138000,subscribed,subscribed,,unsubscribed,,",
    "u28,trailing.@example.com,,subscribed,,,,,",
    "u29,x@example.c0m,,subscribed,,,,,",
    "u30,x@-example.com,,subscribed,,,,,",
    "",
    "u32,x@example.onion,,subscribed,,,,,",
]


def tricky_file(path: Path) -> Path:
    path.write_text(HEADER + "\n".join(TRICKY) + "\n", encoding="utf-8")
    return path


def bench_and_tricky(tmp_path: Path) -> Path:
    """The bench's own generator (5% bad rows) followed by the tricky rows."""
    bench = tmp_path / "bench.csv"
    write_file(bench, 3_000, 0.05, seed=11)
    lines = bench.read_text(encoding="utf-8").splitlines()
    width = len(lines[0].split(","))
    extra = [",".join((row.split(",") + [""] * width)[:width]) for row in TRICKY if row]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def planned(result: tuple[Any, list[Any]]) -> Any:
    row, errors = result
    return (
        None
        if row is None
        else (
            row.number,
            row.cells,
            [
                (c.contact, c.channel, c.status, c.group, c.reason, c.allow_resubscribe)
                for c in row.changes
            ],
            list(row.ids.items()),
            list(row.traits.items()),
        ),
        [(e.row_number, e.column, e.value, e.reason, list(e.original)) for e in errors],
    )


@pytest.mark.parametrize("region", ["US", "GB"])
@pytest.mark.parametrize("make", [tricky_file, bench_and_tricky])
def test_columns_decide_every_row_as_the_reference(tmp_path: Path, region: str, make: Any) -> None:
    path = make(tmp_path / "f.csv") if make is tricky_file else make(tmp_path)
    job = CsvImport(file_digest(path), T0, region)
    with path.open("rb") as fh:
        items = list(job.read(fh))
    reference = [planned(job.plan(n, cells)) for n, cells in items]
    fast = [planned(p) for k in range(0, len(items), 7) for p in job.plan_many(items[k : k + 7])]
    assert fast == reference
    job.close()
    good = sum(1 for r in reference if r[0] is not None)
    assert 0 < good < len(reference)  # both kinds present: the comparison means something


def test_plain_emails_agree_with_normalize_email() -> None:
    values = [row.split(",")[1].strip() for row in TRICKY if row.count(",") > 1]
    values += ["a@b.co", "A@B.CO", "a@" + "b" * 64 + ".com", "a@b.localhost", "a@b.arpa"]
    decided = plain_emails(values)
    assert any(d is not None for d in decided)
    assert any(d is None for d in decided)
    for value, normal in zip(values, decided, strict=True):
        if normal is not None:
            assert normalize_email(value) == normal


QUERIES = (
    "SELECT contact, channel, group_name, status, event_time, seq, source, reason, own_action "
    "FROM subscription_states ORDER BY contact, channel, group_name",
    "SELECT contact, channel, group_name, status, previous_status, event_time, seq, source, "
    "reason, outcome, event_id FROM subscription_history ORDER BY seq, contact, channel, "
    "group_name",
    "SELECT id, merged_into, traits, trait_times, identities, first_seen, last_seen FROM profiles "
    "ORDER BY id",
    "SELECT kind, value, profile_id FROM profile_identities ORDER BY kind, value",
    "SELECT seq, event_id, dedup_key, event, properties FROM events ORDER BY seq",
)


def import_once(url: str, path: Path, columns: bool, report: Path, seed: str) -> Any:
    """The CLI's import path (refusals, erasure screen, stored chunks, processors)."""
    settings = Settings(database_url=url, admin_token=ADMIN_SECRET)
    db = open_database(url, settings)
    try:
        with db.session() as conn:
            migrate(conn)
            builtin = store.builtin_source_id(conn)
            # An own unsubscribe that the file's bulk resubscribe must not undo.
            conn.execute(
                "INSERT INTO subscription_states (contact, channel, group_name, status, "
                "event_time, seq, source, reason, own_action, updated_at) VALUES "
                "(?, 'email', '', 'unsubscribed', 1, 0, 'engagehub', 'link', 1, 1)",
                (seed,),
            )
            job = CsvImport(file_digest(path), T0, "US")
            job.columns = columns
            errors = CsvErrorReport(report)
            with path.open("rb") as fh, batches.Appender(db, builtin, lambda: T0) as appender:
                result = run_import(
                    fh,
                    job,
                    lambda changes: refused_indexes(
                        changes, lambda keys: store.load_states(conn, keys)
                    ),
                    appender.put,
                    errors,
                    chunk=500,
                )
            errors.close()
            job.close()
            run_until_caught_up(conn, registry.processors(settings))
            tables = [[tuple(r) for r in conn.execute(q).fetchall()] for q in QUERIES]
            stored = [
                (
                    r[0],
                    orjson.loads(zlib.decompress(bytes(r[1]))),
                    orjson.loads(zlib.decompress(bytes(r[2]))),
                )
                for r in conn.execute(
                    "SELECT event_id, payload, changes FROM import_batches ORDER BY first_row"
                ).fetchall()
            ]
    finally:
        db.close()
    with report.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.reader(fh))
    counts = (result.rows_read, result.rows_applied, result.rows_rejected, result.changes)
    return counts, appender.stored, tables, stored, lines


def test_column_and_reference_imports_leave_the_same_state(
    database_url: str, second_database_url: str, tmp_path: Path
) -> None:
    path = bench_and_tricky(tmp_path)
    with path.open("a", encoding="utf-8") as fh:  # refused by the seeded own unsubscribe
        fh.write("u99,seeded@example.com,,subscribed,,,,,,\n")
    fast = import_once(database_url, path, True, tmp_path / "fast.csv", "seeded@example.com")
    slow = import_once(
        second_database_url, path, False, tmp_path / "slow.csv", "seeded@example.com"
    )
    assert fast == slow
    counts, stored, tables, _rows, report = fast
    assert stored == len(tables[4]) > 1
    assert counts[2] > 150  # the bench's 5% bad rows, and ours
    assert len(report) > counts[2]
    assert any("unsubscribed by their own action" in line[3] for line in report[1:])
    assert any(line[2] == "not-an-email" for line in report[1:])
