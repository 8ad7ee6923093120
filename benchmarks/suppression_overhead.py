"""Cost of the erasure screen in every append, against appends without it in the same run.

    python benchmarks/suppression_overhead.py [--batches 40] [--batch 2000] [--erased 10000]

Appends the same batches of realistic track events into fresh SQLite databases three ways:
the screen replaced by a pass-through (baseline), the real screen with nobody erased (the fast
path: one ``LIMIT 1`` read per transaction), and with ``--erased`` people erased (every event's
identifiers hashed and looked up; none match, so every event is still stored). Prints events/s
of each and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engagehub.model import IncomingEvent
from engagehub.privacy import suppress
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store


def batches(count: int, size: int) -> list[list[IncomingEvent]]:
    out = []
    for b in range(count):
        out.append(
            [
                IncomingEvent(
                    dedup_key=f"k-{b}-{i}",
                    event_time=1_772_445_600_000 + i,
                    raw='{"event":"Email Opened"}',
                    event="Email Opened",
                    channel="email",
                    user_id=f"user-{(b * size + i) % 50_000}",
                    anonymous_id=f"anon-{i}",
                    contact=f"person{(b * size + i) % 50_000}@example.com",
                    message_id=f"m-{b}-{i}",
                    properties={"campaign_id": "spring"},
                )
                for i in range(size)
            ]
        )
    return out


def run(
    work: list[list[IncomingEvent]], erased: int, screen: Callable[..., object] | None
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = open_database(url, Settings(database_url=url))
        with db.session() as conn:
            migrate(conn)
            source, _ = source_store.create(conn, "bench", "segment")
            if erased:
                with conn.transaction():
                    ids = [("user_id", f"gone-{i}") for i in range(erased)]
                    suppress.add(conn, "er_bench", ids, 0)
            original = suppress.screen
            if screen is not None:
                suppress.screen = screen  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                for events in work:
                    log.append(conn, [log.Batch(source.id, 0, events)])
                elapsed = time.perf_counter() - started
            finally:
                suppress.screen = original
        db.close()
    return sum(len(b) for b in work) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--erased", type=int, default=10_000)
    args = parser.parse_args()
    work = batches(args.batches, args.batch)
    results: dict[str, list[float]] = {"baseline": [], "nobody erased": [], "erased": []}
    for _ in range(3):  # interleaved rounds: machine noise hits every variant alike
        results["baseline"].append(run(work, 0, lambda conn, rows: rows))
        results["nobody erased"].append(run(work, 0, None))
        results["erased"].append(run(work, args.erased, None))
    base = max(results["baseline"])
    for name, rates in results.items():
        best = max(rates)
        label = f"{args.erased} erased" if name == "erased" else name
        print(f"{label:>16}: {best:10.0f} events/s  ({best / base:.3f}x baseline)")


if __name__ == "__main__":
    main()
