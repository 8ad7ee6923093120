"""Processors in follower processes while an import appends: every processor ends at the head
with the state an inline catch-up gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from engagehub import registry
from engagehub.bench.csv_import import write_file
from engagehub.cli.follow import Follower
from engagehub.consent import batches, store
from engagehub.consent.csv_import import CsvErrorReport, CsvImport, file_digest, run_import
from engagehub.processing import reset, run_until_caught_up
from engagehub.processing.rounds import ROUND_CPU
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log

T0 = 1_772_445_600_000
STATES = (
    "SELECT contact, channel, group_name, status, seq FROM subscription_states ORDER BY 1, 2, 3"
)


def test_followers_catch_up_with_an_import(
    db: Database,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENGAGEHUB_DATABASE_URL", database_url)  # what the followers open
    path = tmp_path / "subs.csv"
    write_file(path, 600, 0.05, seed=11)
    job = CsvImport(file_digest(path), T0)
    report = CsvErrorReport(tmp_path / "errors.csv")
    with db.session() as conn, Follower(window=2) as follower, path.open("rb") as fh:
        builtin = store.builtin_source_id(conn)
        run_import(
            fh,
            job,
            lambda changes: set(),
            lambda item: batches.append(conn, builtin, item, T0),
            report,
            chunk=50,
        )
        assert follower.finish()
        assert all(mb > 0 for mb in follower.peaks_mb)
        by_name = follower.cpu_by_name  # each processor's thread CPU, and the rounds' own
        assert {"consent", "profiles", ROUND_CPU} <= set(by_name)
        assert by_name["consent"] > 0
        assert by_name["profiles"] > 0
        assert sum(by_name.values()) <= sum(follower.cpu_s)
        head = log.head(conn)
        cursors = dict(conn.execute("SELECT name, seq FROM processor_offsets").fetchall())
        processors = registry.processors(settings)
        assert {p.name: cursors.get(p.name) for p in processors} == {
            p.name: head for p in processors
        }
        followed = conn.execute(STATES).fetchall()
        assert len(followed) > 1000
        consent = next(p for p in processors if p.name == "consent")
        reset(conn, consent)
        run_until_caught_up(conn, [consent])
        assert conn.execute(STATES).fetchall() == followed
    report.close()
    job.close()
