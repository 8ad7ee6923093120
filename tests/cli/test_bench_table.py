"""``engagehub bench e2e`` prints its nested figures as one table (it crashed on a dict)."""

from __future__ import annotations

import pytest

from engagehub.cli.bench import _figures, flatten


def test_nested_figures_become_rows(capsys: pytest.CaptureFixture[str]) -> None:
    figures = {
        "events": 200_000,
        "normal": {
            "synchronous": "NORMAL",
            "acked_per_s": 17_543.2,
            "processor_cpu_us_per_event": {"analytics": 14.4, "(round)": 9.3},
        },
    }
    flat = flatten(figures)
    assert flat == {
        "events": 200_000,
        "normal.acked_per_s": 17_543.2,
        "normal.processor_cpu_us_per_event.analytics": 14.4,
        "normal.processor_cpu_us_per_event.(round)": 9.3,
    }
    _figures("engagehub bench e2e", flat, False)
    printed = capsys.readouterr().out
    assert "normal.processor_cpu_us_per_event.analytics" in printed
    assert "17,543.20" in printed
