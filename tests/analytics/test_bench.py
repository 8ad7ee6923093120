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
