"""Cost of the click timing rules in the writer, against the same appends without them.

    python benchmarks/click_timing_overhead.py [--batches 60] [--batch 1000] [--rounds 3]

Appends the same batches of ``bench e2e``'s message mix (sent, processed, delivered, opened
twice, clicked: one event in six a click) into fresh SQLite databases, alternately without
the hook (baseline) and with ``classify.timing.writer_hook`` called before each append as the
log writer does (a message cut by a batch boundary has its delivery looked up). Prints events/s
(wall and CPU) of both and the ratio, per round.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engagehub.bench.e2e import _DELIVERED
from engagehub.classify import timing
from engagehub.model import IncomingEvent
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.storage import sources as source_store

NAMES = _DELIVERED  # sent, processed, delivered, opened twice, clicked: one event in six


def batches(count: int, size: int) -> list[list[IncomingEvent]]:
    out = []
    t0 = 1_772_445_600_000
    for b in range(count):
        events = []
        for i in range(size):
            n = b * size + i
            mid, step = f"m-{n // 6}", n % 6
            name = NAMES[step]
            props = {"campaign_id": "spring", "url": f"https://shop.test/{n % 3}"}
            events.append(
                IncomingEvent(
                    dedup_key=f"k-{n}",
                    event_time=t0 + n * 1000,
                    raw="{}",
                    event=name,
                    vendor_event=name,
                    channel="email",
                    contact=f"person{n // 6 % 50_000}@example.com",
                    message_id=mid,
                    properties=props,
                )
            )
        out.append(events)
    return out


def run(work: list[list[IncomingEvent]], hooked: bool) -> tuple[float, float]:
    """(events/s wall, events/s CPU) of appending ``work``."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url)
        db = open_database(url, settings)
        hook = timing.writer_hook(settings) if hooked else None
        with db.session() as conn:
            migrate(conn)
            source, _ = source_store.create(conn, "bench", "segment")
            started, cpu = time.perf_counter(), time.process_time()
            for events in work:
                group = [log.Batch(source.id, 0, events)]
                if hook is not None:
                    hook(conn, group)
                log.append(conn, group)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        db.close()
    total = sum(len(b) for b in work)
    return total / elapsed, total / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for r in range(args.rounds):
        # fresh events each time: the hook must never see a flag set by an earlier round
        base = run(batches(args.batches, args.batch), hooked=False)
        hooked = run(batches(args.batches, args.batch), hooked=True)
        print(
            f"round {r + 1}: append {base[0]:,.0f} ev/s wall, {base[1]:,.0f} ev/s CPU | "
            f"with timing rules {hooked[0]:,.0f} ev/s wall, {hooked[1]:,.0f} ev/s CPU | "
            f"ratio wall {hooked[0] / base[0]:.3f}, CPU {hooked[1] / base[1]:.3f}"
        )


if __name__ == "__main__":
    main()
