"""Prometheus metrics at ``GET /metrics``: ingest counters in memory, lag read from the database.

Counters (events stored or duplicate per source kind, events rejected per vendor and reason)
live in the process; with several ``serve`` workers set ``PROMETHEUS_MULTIPROC_DIR`` (``serve
--workers`` does it) and each scrape sums every worker's files. Gauges that describe shared
state (log head, lag per processor or destination, unmapped names) are read from the database
at scrape time, so any worker answers the same.

Other features report their own lag with :func:`report_lag`::

    report_lag("destination", lambda conn: {"s3-archive": Lag(events=12, seconds=3.5)})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from engagehub.storage import events as log
from engagehub.storage import followers, logread
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: scrapers derive rates from the totals

EVENTS = PromCounter(
    "engagehub_events",
    "Events received on ingest routes and imports, by source kind and outcome.",
    ["kind", "outcome"],
)
REJECTED = PromCounter(
    "engagehub_events_rejected",
    "Events (or whole requests) refused on ingest routes, by vendor and error code.",
    ["vendor", "reason"],
)


@dataclass(frozen=True, slots=True)
class Lag:
    """How far a follower of the log is behind: positions, and age of the oldest one waiting."""

    events: int
    seconds: float = 0.0


LagReporter = Callable[[Connection], Mapping[str, Lag]]
_REPORTERS: dict[str, LagReporter] = {}


def report_lag(kind: str, reporter: LagReporter) -> None:
    """Register ``reporter`` (name -> Lag) for ``kind``; exported as ``engagehub_lag_*``."""
    _REPORTERS[kind] = reporter


def record_append(kind: str, inserted: int, duplicates: int) -> None:
    """Count one append's outcome for a source kind."""
    if inserted:
        EVENTS.labels(kind, "stored").inc(inserted)
    if duplicates:
        EVENTS.labels(kind, "duplicate").inc(duplicates)


def record_rejected(vendor: str, reason: str, count: int = 1, message: str | None = None) -> None:
    """Count refused events (or requests) for a vendor and error code; keep the latest error."""
    REJECTED.labels(vendor, reason).inc(count)
    if message is not None and (vendor in LAST_REFUSAL or len(LAST_REFUSAL) < 64):
        LAST_REFUSAL[vendor] = (now_ms(), reason, message[:500])


LAST_REFUSAL: dict[str, tuple[int, str, str]] = {}
"""Vendor -> (when, code, message) of the latest refusal in this process (bounded)."""


def refusals() -> dict[str, dict[str, int]]:
    """Vendor -> reason -> refused count, as ``engagehub_events_rejected_total`` reports it."""
    found: dict[str, dict[str, int]] = {}
    for metric in REJECTED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                vendor, reason = sample.labels["vendor"], sample.labels["reason"]
                found.setdefault(vendor, {})[reason] = int(sample.value)
    return found


def _age_s(conn: Connection, seq: int, now: int) -> float:
    """Seconds since the event at ``seq`` was received (0 when there is none)."""
    received = logread.received_at(conn, seq)
    return max(0.0, (now - received) / 1000) if received is not None else 0.0


def processor_lag(conn: Connection, names: Iterable[str] = ()) -> dict[str, Lag]:
    """Every cursor in ``processor_offsets`` (and ``names`` not started yet, at 0): positions
    behind the head, and how long the oldest of them has waited."""
    head = log.head(conn)
    now = now_ms()
    cursors = dict.fromkeys(names, 0)
    from engagehub.processing.shards import processor_positions

    cursors.update(processor_positions(conn))  # a sharded processor: its slowest shard
    found = {}
    for name, seq in sorted(cursors.items()):
        behind = max(0, head - seq)
        found[name] = Lag(behind, _age_s(conn, seq + 1, now) if behind else 0.0)
    return found


@dataclass
class Snapshot:
    """Database-derived values, read on a worker thread before rendering."""

    head: int
    lag: dict[tuple[str, str], Lag]
    unmapped: list[tuple[str, str, int, int]]
    failing_at: dict[str, int] = field(default_factory=dict)
    """Processors stuck on one event (``processor_failures``): name -> log position."""


def snapshot(conn: Connection, processors: Iterable[str] = ()) -> Snapshot:
    """Log head, lag of the processors and of every registered reporter, unmapped counts."""
    lag = {("processor", name): value for name, value in processor_lag(conn, processors).items()}
    head = log.head(conn)
    now = now_ms()
    for (kind, name), seq in followers.positions(conn).items():
        if kind != "processor":  # destinations and export targets: the same cursor table
            behind = max(0, head - seq)
            lag[(kind, name)] = Lag(behind, _age_s(conn, seq + 1, now) if behind else 0.0)
    for kind, reporter in _REPORTERS.items():
        for name, value in reporter(conn).items():
            lag[(kind, name)] = value
    unmapped = conn.all(
        "SELECT s.name AS source, s.kind AS kind, sum(u.count) AS events, "
        "count(*) AS names FROM unmapped_events u JOIN sources s ON s.id = u.source_id "
        "GROUP BY s.name, s.kind ORDER BY s.name"
    )
    rows = [(r["source"], r["kind"], int(r["events"]), int(r["names"])) for r in unmapped]
    failing = {
        str(name): int(seq)
        for name, seq in conn.execute("SELECT name, seq FROM processor_failures").fetchall()
    }
    return Snapshot(log.head(conn), lag, rows, failing)


def _processor_cpu(cpu: Mapping[str, float]) -> Metric:
    """Where the processors' CPU goes, per processor: ``name="(round)"`` is the rounds' own
    statements (cursors, log head, commit); a window's decoded events are charged to the
    first processor that reads them."""
    family = CounterMetricFamily(
        "engagehub_processor_cpu_seconds",
        "CPU seconds the processor loop of this server spent, per processor.",
        labels=["name"],
    )
    for name, seconds in sorted(cpu.items()):
        family.add_metric([name], seconds)
    return family


def _gauges(snap: Snapshot, failing: Mapping[str, str]) -> Iterable[Metric]:
    head = GaugeMetricFamily("engagehub_log_head", "Position of the newest event in the log.")
    head.add_metric([], snap.head)
    events = GaugeMetricFamily(
        "engagehub_lag_events",
        "Log positions a follower has not applied yet.",
        labels=["kind", "name"],
    )
    seconds = GaugeMetricFamily(
        "engagehub_lag_seconds",
        "Age of the oldest log event a follower has not applied yet.",
        labels=["kind", "name"],
    )
    for (kind, name), lag in sorted(snap.lag.items()):
        events.add_metric([kind, name], lag.events)
        seconds.add_metric([kind, name], lag.seconds)
    broken = GaugeMetricFamily(
        "engagehub_processor_failing",
        "1 when a processor's last step in this process failed (it retries).",
        labels=["name"],
    )
    for name in sorted(set(failing) | set(snap.failing_at)):
        broken.add_metric([name], 1)
    stuck = GaugeMetricFamily(
        "engagehub_processor_failing_seq",
        "Log position of the event a processor fails on (see `engagehub processors status`).",
        labels=["name"],
    )
    for name, seq in sorted(snap.failing_at.items()):
        stuck.add_metric([name], seq)
    unmapped = GaugeMetricFamily(
        "engagehub_unmapped_events",
        "Events whose name the taxonomy does not map, per source.",
        labels=["source", "kind"],
    )
    names = GaugeMetricFamily(
        "engagehub_unmapped_names",
        "Distinct unmapped event names, per source.",
        labels=["source", "kind"],
    )
    for source, kind, count, distinct in snap.unmapped:
        unmapped.add_metric([source, kind], count)
        names.add_metric([source, kind], distinct)
    return [head, events, seconds, broken, stuck, unmapped, names]


class _Static:
    """A collector yielding metrics already read (the database part of one scrape)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def render(
    snap: Snapshot, failing: Mapping[str, str], cpu: Mapping[str, float] | None = None
) -> tuple[bytes, str]:
    """The exposition text: this process's (or every worker's) counters, then the gauges;
    ``cpu`` is the processor loop's CPU seconds per processor (``ProcessorRunner.cpu``)."""
    multiproc = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc:
        counters = CollectorRegistry()
        MultiProcessCollector(counters, multiproc)  # type: ignore[no-untyped-call]
        body = generate_latest(counters)
    else:
        body = generate_latest(REGISTRY)
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(cast(Any, _Static([*_gauges(snap, failing), _processor_cpu(cpu or {})])))
    return body + generate_latest(gauges), CONTENT_TYPE_LATEST
