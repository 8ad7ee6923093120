"""The analytics benchmark at toy size: it runs, and its rollup stats equal DuckDB's answers."""

from __future__ import annotations

from engagehub.bench.analytics import run


def test_bench_answers_match_duckdb() -> None:
    seen: list[int] = []
    figures = run(3000, 20, 25, 1000, seen.append)
    assert figures["events"] == sum(seen) >= 3000
    assert figures["answers_differing_from_duckdb"] == 0
    assert figures["rollup_rows"] > 0
    assert figures["stats_queries"] == 25
    # CPU per phase (the fair figure on a shared machine) within the run's own CPU.
    assert 0 < figures["analytics_processor_cpu_s"] < figures["whole_run_cpu_s"]
    assert 0 < figures["load_cpu_s"] < figures["whole_run_cpu_s"]
    assert figures["duckdb_cpu_s"] > 0
    assert figures["whole_run_s"] > 0
