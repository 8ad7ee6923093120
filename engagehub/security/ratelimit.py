"""Per-key token buckets: each credential (or client address) gets ``rate`` requests a second.

Keys are SHA-256 digests of the credential, never the credential itself, and the table is
bounded (least recently used keys are dropped) so random keys cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
import math
import time

from engagehub.lru import LRU

MAX_KEYS = 100_000


class RateLimiter:
    """Token bucket per key; ``check`` answers the seconds to wait, 0 when allowed."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.max_keys = max_keys
        self._buckets: LRU[bytes, tuple[float, float]] = LRU(max_keys)

    @property
    def enabled(self) -> bool:
        """A rate of 0 turns limiting off."""
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, digest: bytes, now: float) -> float:
        tokens, last = self._buckets.get(digest) or (self.burst, now)
        return min(self.burst, tokens + (now - last) * self.rate)

    def _wait(self, tokens: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def check(self, key: str, now: float | None = None) -> int:
        """Take one token for ``key``; 0 when allowed, else whole seconds until one is free."""
        if not self.enabled:
            return 0
        now = time.monotonic() if now is None else now
        digest = _digest(key)
        tokens = self._tokens(digest, now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets.put(digest, (tokens, now))
        return 0 if allowed else self._wait(tokens)

    def peek(self, key: str, now: float | None = None) -> int:
        """Seconds until ``key`` has a token again (0: it has one); takes nothing."""
        if not self.enabled:
            return 0
        now = time.monotonic() if now is None else now
        tokens = self._tokens(_digest(key), now)
        return 0 if tokens >= 1.0 else self._wait(tokens)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
