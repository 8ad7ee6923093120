"""``engagehub bench export``: events/s exported to Parquet vs a raw pyarrow write, same rows."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress

from engagehub.export import runner, schema
from engagehub.model import IncomingEvent
from engagehub.settings import Settings
from engagehub.storage import Database, arrow, migrate, open_database
from engagehub.storage import events as log
from engagehub.storage import sources as source_store

_EVENTS = ("Email Delivered", "Email Opened", "Email Link Clicked", "SMS Delivered", "Push Sent")


def fill(db: Database, count: int, progress: Progress | None = None) -> None:
    """Append ``count`` realistic canonical events spread over 24 hours."""
    with db.session() as conn:
        migrate(conn)
        source, _ = source_store.create(conn, "bench", "segment")
        task = progress.add_task("filling the log", total=count) if progress else None
        base = 1_764_000_000_000
        for start in range(0, count, 20_000):
            events = [
                IncomingEvent(
                    dedup_key=f"b{i}",
                    event_time=base + (i * 86_400_000) // count,
                    raw="{}",
                    event=_EVENTS[i % len(_EVENTS)],
                    channel="email",
                    user_id=f"user-{i % 5000}",
                    contact=f"user-{i % 5000}@example.com",
                    message_id=f"msg-{i // 3}",
                    campaign_id=f"camp-{i % 20}",
                    properties={
                        "email": f"user-{i % 5000}@example.com",
                        "campaign_name": f"Campaign {i % 20}",
                        "url": "https://example.com/a" if i % 5 == 2 else None,
                        "send_id": f"s{i % 7}",
                    },
                )
                for i in range(start, min(count, start + 20_000))
            ]
            log.append(conn, [log.Batch(source.id, base, events)])
            if progress is not None and task is not None:
                progress.advance(task, len(events))


def raw_write(rows: list[Any], path: Path) -> float:
    """Seconds for pyarrow alone to turn the same rows into one Parquet file (the ceiling)."""
    started = time.perf_counter()
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(c) for c in columns]
    table = pa.Table.from_arrays(arrays, names=[f.strip() for f in schema.LOG_SQL.split(",")])
    pq.write_table(table, path, compression="zstd")
    return time.perf_counter() - started


def raw_arrow_write(table: pa.Table, path: Path) -> float:
    """Seconds for pyarrow alone to write the log's columns, already in Arrow, as one zstd
    Parquet file: the floor of the encode without reading, partitioning or promoting."""
    started = time.perf_counter()
    pq.write_table(table, path, compression="zstd")
    return time.perf_counter() - started


def _cpu_s() -> float:
    """CPU seconds of this process (every thread) and of its live children: SQLite reads run in
    reader processes (``storage.arrow``)."""
    children = psutil.Process().children(recursive=True)
    return time.process_time() + sum(sum(c.cpu_times()[:2]) for c in children)


def _timed_run(
    conn: Any, out: str, count: int, fmt: runner.Format, layout: str = "canonical"
) -> tuple[Any, float, float]:
    """(result, wall s, CPU s) of one export of the whole log."""
    started, cpu = time.perf_counter(), _cpu_s()
    result = runner.run(conn, out, fmt=fmt, chunk=max(count, 1), layout=layout)
    return result, time.perf_counter() - started, _cpu_s() - cpu


def run(count: int) -> dict[str, Any]:
    """Fill a fresh SQLite log, export it (Parquet, then Avro; the canonical layout, then the
    Currents layout users get by default), and time raw pyarrow writes of the same rows."""
    with tempfile.TemporaryDirectory(prefix="engagehub-bench-export-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db = open_database(url, Settings(database_url=url))
        with Progress(transient=True) as progress:
            fill(db, count, progress)
        schema.metadata("warm-up", 0, 0)  # load the taxonomy once, as a running server has
        arrow.warm_sqlite_readers(runner.ENCODERS)
        load = os.getloadavg()[0]
        figures: dict[str, Any] = {}
        with db.session() as conn:
            result, export_s, export_cpu = _timed_run(conn, f"{tmp}/out", count, "parquet")
            # The same export again: the first in a process pays the kernel's zeroing of the
            # memory it touches (~0.2 CPU-s per 300k); a long export or a server pays it once.
            warm, warm_s, warm_cpu = _timed_run(conn, f"{tmp}/warm", count, "parquet")
            avro, avro_s, avro_cpu = _timed_run(conn, f"{tmp}/avro", count, "avro")
            for fmt in ("parquet", "avro"):
                done, wall, cpu = _timed_run(conn, f"{tmp}/c-{fmt}", count, fmt, "currents")
                prefix = "currents_" if fmt == "parquet" else "currents_avro_"
                figures[f"{prefix}events_per_s"] = done.events / wall
                figures[f"{prefix}events_per_cpu_s"] = done.events / max(cpu, 1e-9)
            read = runner.read_range(conn, None, 0, log.head(conn))
            rows = conn.execute(f"SELECT {schema.LOG_SQL} FROM events ORDER BY seq").fetchall()
        baseline_s = raw_write(rows, Path(tmp) / "raw.parquet")
        arrow_s = raw_arrow_write(read, Path(tmp) / "raw-arrow.parquet")
        db.close()
    export_rate = result.events / export_s
    raw_rate = len(rows) / baseline_s
    return {
        "events": result.events,
        "files": len(result.files),
        "export_s": round(export_s, 3),
        "events_per_s": export_rate,
        # CPU time over every thread: on a shared machine wall time also measures the others.
        "events_per_cpu_s": result.events / max(export_cpu, 1e-9),
        "warm_events_per_s": warm.events / warm_s,
        "warm_events_per_cpu_s": warm.events / max(warm_cpu, 1e-9),
        "avro_events_per_s": avro.events / avro_s,
        "avro_events_per_cpu_s": avro.events / max(avro_cpu, 1e-9),
        **figures,
        "raw_pyarrow_events_per_s": raw_rate,
        "ratio_vs_raw_pyarrow": export_rate / raw_rate,
        "raw_arrow_write_events_per_s": read.num_rows / arrow_s,
        "ratio_vs_raw_arrow_write": export_rate / (read.num_rows / arrow_s),
        "encoder_threads": runner.ENCODERS,
        "load_average_1m": round(load, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "target_events_per_s": 500_000,
    }
