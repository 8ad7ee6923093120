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
    assert figures["rows"] == ["workers_1", "workers_2", "one_worker_sharded"]
    for key, workers, shards in (
        ("workers_1", 1, 1),
        ("workers_2", 2, 2),
        ("one_worker_sharded", 1, 2),
    ):
        entry = figures[key]
        assert (entry["workers"], entry["shards"]) == (workers, shards)
        assert entry["events"] >= 3000  # every processor reached the head (companions too)
        assert entry["events_per_s"] > 0
        # every cursor of the layout finished, the sharded analytics and its cross pass too
        finished = set(entry["finished_s"])
        assert (
            "analytics" in finished
            if shards == 1
            else {"analytics#0/2", "analytics#1/2", "analytics#cross/2"} <= finished
        )
        assert entry["workers_cpu_s"] > 0
        assert entry["workers_startup_cpu_s"] > 0  # held back until every worker was up
        assert entry["postgres_cpu_s"] is None or entry["postgres_cpu_s"] > 0
    assert figures["workers_1"]["ratio_vs_1_worker"] == 1.0
