"""Processors: idempotent consumers of the event log, each following it with a durable cursor.

The contract (see docs/architecture.md, "Processing"): a **round** reads one window of the log
once, hands it to every processor as a :class:`Window`, and commits every processor's effects and
every cursor in ONE transaction — a crash replays the whole round, so nothing doubles or is
skipped. Each processor runs inside its own savepoint: one that fails rolls back alone, keeps its
cursor, and the others (and ingest) go on.

A processor implements ``apply_window(window)``. Processors written for the older per-event
contract (``where``, ``payload``, ``apply(conn, events)``) keep working unchanged: the round
hands them ``window.events(where, payload)`` (decoded once per round for all of them).
"""

from __future__ import annotations

from collections.abc import Sequence

from engagehub.processing.health import Follower
from engagehub.processing.rounds import (
    EventProcessor,
    Processor,
    Round,
    SharedWindow,
    Unit,
    WindowProcessor,
    apply,
    get_offset,
    reset,
    run_round,
    set_offset,
    step,
)
from engagehub.processing.shards import layout
from engagehub.processing.window import Shard, Window
from engagehub.storage.base import Connection

__all__ = [
    "EventProcessor",
    "Processor",
    "Round",
    "Shard",
    "SharedWindow",
    "Unit",
    "Window",
    "WindowProcessor",
    "apply",
    "get_offset",
    "reset",
    "run_round",
    "run_until_caught_up",
    "set_offset",
    "step",
]


def run_until_caught_up(
    conn: Connection, processors: Sequence[Processor], window: int = 5000
) -> None:
    """Run rounds until every processor reaches the log head (CLI commands, tests).

    Includes the events processors appended themselves (consent's companions). A processor that
    fails is narrowed down to the failing event while the others go on; then the failure is
    raised (``ProcessorFailed``, with its log position) and recorded for ``processors status``.
    """
    Follower(layout(conn, processors), window).catch_up(conn)
