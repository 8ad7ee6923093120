"""``engagehub bench postgres`` at a tiny size, so the benchmark keeps working."""

from __future__ import annotations

from engagehub.bench.postgres import run
from tests.conftest import postgres_base_url


def test_bench_postgres_measures_api_and_copy_in_one_run() -> None:
    figures = run(
        [1], duration=0.5, concurrency=4, batch_size=10, url=postgres_base_url(), copy_rows=2000
    )
    api = figures["api_1"]
    assert api["failures"] == 0
    assert api["acked_events"] > 0
    assert api["acked_events"] == api["stored_events"]
    assert figures["copy_rows_per_s"] > 0
    assert api["ratio_vs_copy"] == api["events_per_s"] / figures["copy_rows_per_s"]
    assert api["ratio_vs_1_process"] == 1.0


def test_bench_postgres_processing_rate_with_sharded_workers() -> None:
    from engagehub.bench.postgres import run_processing

    figures = run_processing([1, 2], events=3000, url=postgres_base_url())
    assert figures["head"] >= 3000
    for n in (1, 2):
        entry = figures[f"workers_{n}"]
        assert entry["events"] >= 3000  # every processor reached the head (companions too)
        assert entry["events_per_s"] > 0
    assert figures["workers_1"]["ratio_vs_1_worker"] == 1.0
