"""``engagehub bench e2e`` at toy size: every event acknowledged and derived, and the tail
after the last acknowledgement measured from lag reads 5 ms apart."""

from __future__ import annotations

from engagehub.bench.e2e import _NEAR_END, _poll_s, bodies, one_run


def test_one_run_reports_the_tail_after_the_last_ack() -> None:
    figures = one_run(bodies(3000, batch_size=100), "NORMAL", 4, 120.0)
    assert figures["events"] == figures["acked_events"] == 3000
    assert figures["failures"] == 0
    assert figures["lag_left"] == 0
    # lag read right after the last ack: processors' positions behind, at most all of them
    processors = len(figures["processor_cpu_us_per_event"]) - 1  # less "(round)"
    assert 0 <= figures["lag_at_ack"] <= 3000 * processors, figures
    assert figures["tail_s"] == figures["end_to_end_s"] - figures["acked_s"]
    assert figures["tail_s"] >= 0
    if figures["lag_at_ack"] == 0:
        assert figures["tail_s"] < 0.5  # caught up at the ack: the first read said so


def test_lag_is_read_every_5_ms_near_the_end() -> None:
    assert _poll_s(0) == _poll_s(_NEAR_END) == 0.005
    assert _poll_s(_NEAR_END + 1) == 0.05
