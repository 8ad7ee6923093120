"""Per-key token buckets: each credential (or client address) gets ``rate`` requests a second.

Keys are SHA-256 digests of the credential, never the credential itself, and the table is
bounded (least recently used keys are dropped) so random keys cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict

MAX_KEYS = 100_000


class RateLimiter:
    """Token bucket per key; ``check`` answers the seconds to wait, 0 when allowed."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.max_keys = max_keys
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """A rate of 0 turns limiting off."""
        return self.rate > 0

    def check(self, key: str, now: float | None = None) -> int:
        """Take one token for ``key``; 0 when allowed, else whole seconds until one is free."""
        if not self.enabled:
            return 0
        now = time.monotonic() if now is None else now
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        tokens, last = self._buckets.pop(digest, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[digest] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
