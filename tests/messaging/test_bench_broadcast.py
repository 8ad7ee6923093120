"""``engagehub bench broadcast``: a small run gives every figure, with the untracked baseline."""

from __future__ import annotations

from engagehub.bench import broadcast


def test_small_broadcast_bench_compares_tracked_and_untracked() -> None:
    seen: list[int] = []
    figures = broadcast.run(60, 30, seen.append, links=3)
    assert figures["sent"] == 60
    assert figures["received_by_smtp_server"] == 60  # the tracked run's own messages
    assert figures["baseline_raw_aiosmtplib_msgs"] == 30
    assert figures["links_per_message"] == 3
    assert figures["untracked_broadcast_msg_per_s"] > 0
    assert figures["ratio_tracked_vs_untracked"] > 0
    assert figures["cpu_us_per_msg"] > 0
    assert seen[-1:] == [60]
    assert broadcast.template(3).html.count("<a href=") == 3  # type: ignore[union-attr]
