"""The export benchmark at toy size: every layout and format runs and is reported."""

from __future__ import annotations

from engagehub.bench.export import run


def test_bench_reports_each_layout_next_to_raw_writes() -> None:
    figures = run(2_000)
    assert figures["events"] == 2_000
    assert figures["files"] == 5 * 24  # five event names over 24 hours, one file per hour
    for key in (
        "events_per_s",
        "warm_events_per_s",
        "warm_events_per_cpu_s",
        "avro_events_per_s",
        "currents_events_per_s",
        "currents_events_per_cpu_s",
        "currents_avro_events_per_s",
        "raw_pyarrow_events_per_s",
        "raw_arrow_write_events_per_s",
    ):
        assert figures[key] > 0, key
    assert figures["ratio_vs_raw_arrow_write"] == (
        figures["events_per_s"] / figures["raw_arrow_write_events_per_s"]
    )
