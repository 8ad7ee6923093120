"""The messaging background service: sends queued messages, broadcasts at their rate, and
journey timers. Runs inside ``serve`` (and any worker); state is all in the database."""

from __future__ import annotations

import time
from collections.abc import Callable

from engagehub.messaging import broadcasts, double_opt_in, journeys, outcomes
from engagehub.messaging.delivery import Sender
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.timeutil import now_ms


class Bucket:
    """Token bucket for one broadcast's rate (per process)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = min(rate, 1.0)
        self.at = clock()

    def take(self, most: int) -> int:
        """Whole tokens available now, up to ``most``."""
        now = self.clock()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.at) * self.rate)
        self.at = now
        n = min(most, int(self.tokens))
        self.tokens -= n
        return n


class MessagingService:
    """One unit of work: settle stale handed rows, advance journeys, send a batch."""

    name = "messaging"
    interval = 0.2

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        """Seconds, monotonic: rates and housekeeping intervals (tests pass a fake one)."""
        self.buckets: dict[str, Bucket] = {}
        self._last_settle = 0.0
        self._last_expiry = 0.0
        self.sender = Sender(settings)

    def run_once(self, db: Database) -> bool:
        """True when there may be more to send right away; connections close when idle."""
        more = self._work(db)
        if not more:
            self.sender.close()
        return more

    def _work(self, db: Database) -> bool:
        now = self.clock()
        with db.writer() as conn:
            if now - self._last_settle > 5:
                outcomes.settle_stale_handed(conn)
                self._last_settle = now
            if now - self._last_expiry > 60:
                double_opt_in.expire(conn, self.settings)
                self._last_expiry = now
            moved = journeys.tick(conn)
            moved += len(broadcasts.start_due(conn, now_ms()))
            running = broadcasts.running(conn)
        more = moved > 0
        batch = self.settings.send_batch
        alone = self.sender.run_batch(db, batch)
        more |= len(alone) == batch
        for bid, rate in running:
            bucket = self.buckets.get(bid)
            if bucket is None or bucket.rate != rate:
                bucket = self.buckets[bid] = Bucket(rate, self.clock)
            allowed = bucket.take(batch)
            if allowed:
                sent = self.sender.run_batch(db, allowed, broadcast=bid)
                bucket.tokens += allowed - len(sent)
                if len(sent) == allowed:
                    more = True
                    continue
                with db.writer() as conn:
                    broadcasts.finish_done(conn, bid)
        return more
