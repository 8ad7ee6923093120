"""The demo week, planned up front from a seed: users, campaigns, and every vendor request.

A plan is pure data (no clock, no network), so the same seed and start day give the same
events and the same dedup keys; :mod:`engagehub.demo.run` sends it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Guido")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Perlman")


@dataclass(slots=True)
class User:
    """A demo customer; ``phone`` is in the 555-01xx range reserved for fiction."""

    index: int
    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str


@dataclass(slots=True)
class Call:
    """One HTTP request a vendor would make: JSON body or form parameters, never both."""

    vendor: str
    path: str
    json: Any = None
    form: list[tuple[str, str]] | None = None
    events: int = 1


@dataclass(slots=True)
class Planned:
    """One event the plan expects in the log: its canonical name (None: not canonical)."""

    vendor: str
    name: str
    canonical: str | None
    user: str
    time_ms: int


@dataclass
class Plan:
    """Everything the demo sends, in order, and what the log must hold afterwards."""

    seed: int
    start_ms: int
    users: list[User]
    calls: list[Call] = field(default_factory=list)
    avro: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[Planned] = field(default_factory=list)
    stop_phones: list[str] = field(default_factory=list)
    unsubscribed_emails: list[str] = field(default_factory=list)

    def expected(self) -> Counter[str | None]:
        """Events per canonical name (None for identify calls and business events)."""
        return Counter(e.canonical for e in self.events)

    def by_vendor(self) -> Counter[str]:
        """Events per vendor."""
        return Counter(e.vendor for e in self.events)


class Builder:
    """Draws everything from one seeded generator, in a fixed order."""

    def __init__(self, seed: int, start: datetime, users: int) -> None:
        self.rng = random.Random(seed)
        start = start.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
        self.plan = Plan(seed, int(start.timestamp() * 1000), self._users(users))

    def _users(self, count: int) -> list[User]:
        people = []
        for i in range(count):
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            people.append(
                User(
                    index=i,
                    user_id=f"demo-user-{i:03d}",
                    first_name=first,
                    last_name=last,
                    email=f"{first}.{last}.{i}@example.com".lower(),
                    phone=f"+1415555{100 + i:04d}",
                )
            )
        return people

    def uid(self) -> str:
        """A vendor-style random id (deterministic under the seed)."""
        return f"{self.rng.getrandbits(64):016x}"

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.rng.random() < p

    def at(self, day: int, hour: float, jitter_min: int = 0) -> int:
        """A time in the simulated week (ms), with up to ``jitter_min`` minutes added."""
        extra = self.rng.randint(0, jitter_min) * MINUTE if jitter_min else 0
        return self.plan.start_ms + day * DAY + int(hour * HOUR) + extra

    def expect(self, vendor: str, name: str, canonical: str | None, user: User, t: int) -> None:
        """Record an event the log must hold."""
        self.plan.events.append(Planned(vendor, name, canonical, user.user_id, t))


def iso(ms: int) -> str:
    """ISO-8601 UTC with milliseconds, as Segment libraries write it."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in lists of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]
