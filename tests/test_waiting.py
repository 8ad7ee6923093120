"""eventually(): returns the first truthy answer, fails fast on errors, names what timed out."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import eventually


def test_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert eventually(lambda: [n for n in [next(calls)] if n >= 3], interval=0) == [3]


def test_errors_fail_at_once_unless_ignored() -> None:
    with pytest.raises(ZeroDivisionError):
        eventually(lambda: 1 / 0, timeout=5)
    calls = itertools.count()

    def flaky() -> int:
        n = next(calls)
        if n < 2:
            raise ConnectionError(n)
        return n

    assert eventually(flaky, interval=0, ignoring=(ConnectionError,)) == 2


def test_a_timeout_names_what_was_awaited_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"the queue to drain did not happen .*\(last: \[\]\)"):
        eventually(list, timeout=0.05, what="the queue to drain")
