"""A clock tests move by hand: code that takes ``clock: Callable[[], float]`` gets it instead
of sleeping tests waiting for real time to pass."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that change only when ``advance`` is called."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds
