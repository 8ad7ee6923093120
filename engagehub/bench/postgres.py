"""``engagehub bench postgres``: ingest events/s with 1, 2, 4 API processes vs a raw ``COPY``.

Each measurement gets a fresh schema on one PostgreSQL server (a throwaway one started here
with ``initdb``/``pg_ctl`` unless a URL is given). The API processes run ``serve --workers N``
with processors off (ingest only, as in the recommended topology); the baseline COPYs the same
parsed rows into the same partitioned ``events`` table, 2,000 rows per transaction.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import psycopg

from engagehub.bench.ingest import WRITE_KEY, _load, batch_template, free_port, server
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import open_database
from engagehub.storage import sources as source_store
from engagehub.storage.migrate import migrate
from engagehub.timeutil import now_ms
from engagehub.vendors import segment

_MARK = b"@@R@@"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start PostgreSQL in a temporary directory (as ``nobody`` when run as root); yield its URL."""
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found on PATH; pass --url to use a running server")
    root = tempfile.mkdtemp(prefix="engagehub-bench-pg.")
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    port = free_port()
    data = f"{root}/data"
    subprocess.run(
        [*prefix, "initdb", "-D", data, "-U", "engagehub", "--auth=trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(
        [*prefix, "pg_ctl", "-D", data, "-l", f"{root}/log", "-w", "-o", options, "start"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://engagehub@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, "pg_ctl", "-D", data, "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    """A migrated private schema on the server; yields a URL using it; dropped afterwards."""
    schema = "bench_" + secrets.token_hex(4)
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    db = open_database(url, Settings(database_url=url))
    try:
        with db.session() as conn:
            migrate(conn)
            source_store.create(conn, "bench", "segment", write_key=WRITE_KEY)
        yield url
    finally:
        db.close()
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0]) if row else 0


def measure_api(
    url: str, processes: int, template: bytes, concurrency: int, duration: float
) -> dict[str, Any]:
    """Acknowledged events/s of ``serve --workers processes`` on this schema."""
    port = free_port()
    env = {
        "ENGAGEHUB_DATABASE_URL": url,
        "ENGAGEHUB_ADMIN_TOKEN": "bench-admin-token",
        "ENGAGEHUB_RUN_PROCESSORS": "false",
        "ENGAGEHUB_RUN_SERVICES": "false",
        "ENGAGEHUB_POSTGRES_POOL_SIZE": "4",
    }
    cmd = [sys.executable, "-m", "engagehub", "serve", "--port", str(port)]
    cmd += ["--log-level", "warning", "--workers", str(processes)]
    batch_size = template.count(_MARK)
    with server(cmd, env, port):
        _load(port, template, concurrency, min(2.0, duration), f"w{processes}-")  # warm-up
        before = _count(url)
        result = _load(port, template, concurrency, duration, f"r{processes}-")
        stored = _count(url) - before
    acked = result.statuses.get(200, 0) * batch_size
    return {
        "events_per_s": acked / result.elapsed_s,
        "p50_ms": result.percentile(50),
        "p99_ms": result.percentile(99),
        "failures": result.failures,
        "acked_events": acked,
        "stored_events": stored,
    }


def copy_ceiling(url: str, template: bytes, rows: int, per_txn: int = 2000) -> float:
    """Rows/s of a raw ``COPY`` of the same parsed rows into the same ``events`` table."""
    made: list[tuple[Any, ...]] = []
    i = 0
    while len(made) < rows:
        body = template.replace(_MARK, f"c{i}".encode())
        parsed = segment.parse_envelope(segment.decode(body, "batch"), now_ms())
        made.extend(log._row(1, now_ms(), ev) for ev in parsed.events)
        i += 1
    columns = log._COPY_EVENTS.replace("seq, ", "", 1)
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for n in range(0, len(made), per_txn):
            with conn.cursor() as cur, cur.copy(columns) as copy:
                for row in made[n : n + per_txn]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - start
    return len(made) / elapsed


def _preload(url: str, events: int) -> int:
    """Append ``events`` mixed engagement events (Segment batches) to the log; the head."""
    from engagehub.bench.e2e import bodies

    db = open_database(url, Settings(database_url=url))
    try:
        with db.session() as conn:
            source = source_store.by_name(conn, "bench")
            received = now_ms()
            for body in bodies(events, batch_size=1000):
                parsed = segment.parse_envelope(segment.decode(body, "batch"), received).events
                log.append(conn, [log.Batch(source.id, received, parsed)])
            return log.head(conn)
    finally:
        db.close()


def _reset_processors(url: str) -> None:
    """Every processor back to position 0 with empty derived tables (one layout: unsharded)."""
    from engagehub import registry
    from engagehub.processing import reset

    settings = Settings(database_url=url)
    db = open_database(url, settings)
    try:
        with db.session() as conn:
            with conn.transaction():
                conn.execute("DELETE FROM processor_offsets WHERE name LIKE '%#%'")
            for processor in registry.processors(settings):
                reset(conn, processor)
    finally:
        db.close()


def _cursors(conn: psycopg.Connection[Any]) -> tuple[int, dict[str, int]]:
    """The log head and every processor cursor (each shard's and pass's)."""
    head = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    rows = conn.execute("SELECT name, seq FROM processor_offsets WHERE kind = 'processor'")
    conn.commit()
    return int(head[0] if head else 0), {str(n): int(s) for n, s in rows.fetchall()}


def _server_cpu_s(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds the PostgreSQL server has used so far (its postmaster, the backends it has
    reaped and the live ones), when it runs on this machine; None otherwise."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    conn.commit()
    try:
        postmaster = int(_stat(int(row[0]) if row else 0)[1])
        ticks = _stat(postmaster)
        total = sum(int(t) for t in ticks[11:15])  # utime, stime, cutime, cstime
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    child = _stat(int(entry))
                    if int(child[1]) == postmaster:
                        total += int(child[11]) + int(child[12])
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from its third field (state, ppid, ...)."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
        text = fh.read()
    return text[text.rindex(")") + 2 :].split()


def measure_workers(
    url: str, workers: int, timeout: float = 900.0, shards: int | None = None
) -> dict[str, Any]:
    """Events/s at which ``workers`` ``engagehub worker`` processes derive the pre-loaded log.

    Each processor that can be split gets ``shards`` shards (default: one per worker). The
    workers start up while the bench holds every cursor's lock (their start-up CPU is reported
    apart); timed from the first cursor that moves until every cursor is at the log head.
    """
    _reset_processors(url)
    shards = shards or workers
    env = {
        **os.environ,
        "ENGAGEHUB_DATABASE_URL": url,
        "ENGAGEHUB_PROCESSOR_SHARDS": str(shards),
        "ENGAGEHUB_RUN_SERVICES": "false",
        "ENGAGEHUB_WORKER_POLL_INTERVAL": "0.05",
        "ENGAGEHUB_POSTGRES_POOL_SIZE": "2",
    }
    watch = psycopg.connect(url)
    gate = _hold_cursors(url, shards)  # start-up (imports, migrations check) is not the rate
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "engagehub", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    moved = False
    done_at: dict[str, float] = {}
    try:
        startup = _settled(procs)
        cpu_before, idle_before = _procs_cpu_s(procs), _machine_idle()
        server_before = _server_cpu_s(watch)
        gate.close()  # every worker is up and waiting: go
        started = first = time.perf_counter()
        while True:
            head, cursors = _cursors(watch)
            now = time.perf_counter()
            if not moved and any(s > 0 for s in cursors.values()):
                moved, first = True, now
            for name, seq in cursors.items():
                if seq >= head and name not in done_at:
                    done_at[name] = now
            # Caught up: every cursor at the head, in the layout the workers resharded to.
            resharded = any("#" in n for n in cursors) or shards == 1
            if moved and resharded and all(s >= head for s in cursors.values()):
                break
            if now - started > timeout:
                raise RuntimeError(f"workers did not catch up in {timeout:.0f} s: {cursors}")
            time.sleep(0.05)
        server_cpu = _server_cpu_s(watch)  # before the workers' backends exit
        workers_cpu = _procs_cpu_s(procs) - cpu_before
    finally:
        gate.close()
        watch.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    elapsed = max(1e-9, now - first)
    idle = _machine_idle()
    postgres_cpu = (
        server_cpu - server_before if server_cpu is not None and server_before is not None else None
    )
    cpus = os.cpu_count() or 1
    return {
        "workers": workers,
        "shards": shards,
        "events": head,
        "seconds": elapsed,
        "events_per_s": head / elapsed,
        # What bounds the count: the CPU the workers and the database used (from the go),
        # the shortest time that CPU allows on this machine's cores, and whether the machine had
        # a core left while they ran (every process on it, neighbours too).
        "workers_cpu_s": workers_cpu,
        "workers_startup_cpu_s": startup,
        "postgres_cpu_s": postgres_cpu,
        "cpu_floor_s": (workers_cpu + (postgres_cpu or 0.0)) / cpus,
        "machine_idle_share": (idle[0] - idle_before[0]) / max(1, idle[1] - idle_before[1]),
        "load_average_1m": os.getloadavg()[0],
        # Which cursors finished last (the critical path), seconds after the first moved.
        "finished_s": {
            n: round(t - first, 2) for n, t in sorted(done_at.items(), key=lambda x: x[1])
        },
    }


def _hold_cursors(url: str, shards: int) -> psycopg.Connection[Any]:
    """A connection holding every processor cursor's lock (the current layout's and the one the
    workers will reshard to) until it is closed: workers start up, then wait."""
    from engagehub import registry
    from engagehub.processing.shards import units
    from engagehub.storage import locks

    gate = psycopg.connect(url, autocommit=True)
    current = [str(r[0]) for r in gate.execute("SELECT name FROM processor_offsets").fetchall()]
    wanted = [u.name for u in units(registry.processors(Settings(database_url=url)), shards)]
    for name in sorted(set(current) | set(wanted)):
        gate.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (locks.PROCESSOR_CLASS, name))
    return gate


def _settled(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 120.0) -> float:
    """Wait until the processes stop using CPU (started up, waiting for a lock); their CPU s."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        cpu = _procs_cpu_s(procs)
        if cpu - last < 0.02:
            return cpu
        last = cpu
        time.sleep(0.5)
    raise RuntimeError(f"workers still starting after {timeout:.0f} s")


def _procs_cpu_s(procs: Sequence[subprocess.Popen[bytes]]) -> float:
    """CPU seconds these live processes have used (each from /proc)."""
    total = 0
    for proc in procs:
        with contextlib.suppress(OSError, IndexError, ValueError):
            ticks = _stat(proc.pid)
            total += int(ticks[11]) + int(ticks[12])
    return total / os.sysconf("SC_CLK_TCK")


def _machine_idle() -> tuple[int, int]:
    """(idle, total) CPU ticks of the whole machine since boot (``/proc/stat``; 0s elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0, 0
    return ticks[3] + ticks[4], sum(ticks)  # idle + iowait


def run_processing(
    counts: Sequence[int] = (1, 2, 4), events: int = 100_000, url: str | None = None
) -> dict[str, Any]:
    """Processing rate of one pre-loaded log with each worker count (same run, same server),
    and one worker holding as many shards as the second count (what shards give without a
    second process: on one machine a worker already runs each shard on its own connection)."""
    figures: dict[str, Any] = {"events": events, "cpus": os.cpu_count()}
    rows = [(f"workers_{n}", n, n) for n in counts]
    if len(counts) > 1 and counts[1] > 1:
        rows.append(("one_worker_sharded", 1, counts[1]))
    with contextlib.ExitStack() as stack:
        base = url or stack.enter_context(throwaway_postgres())
        with fresh_schema(base) as schema_url:
            figures["head"] = _preload(schema_url, events)
            for key, workers, shards in rows:
                figures[key] = measure_workers(schema_url, workers, shards=shards)
    one = figures[f"workers_{counts[0]}"]["events_per_s"]
    for key, _, _ in rows:
        figures[key][f"ratio_vs_{counts[0]}_worker"] = figures[key]["events_per_s"] / one
    figures["rows"] = [key for key, _, _ in rows]
    return figures


def run(
    processes: Sequence[int] = (1, 2, 4),
    duration: float = 10.0,
    concurrency: int = 32,
    batch_size: int = 100,
    url: str | None = None,
    copy_rows: int = 100_000,
) -> dict[str, Any]:
    """Every measurement in one run against one server; returns the figures."""
    template = batch_template(batch_size)
    figures: dict[str, Any] = {
        "batch_size": batch_size,
        "concurrency": concurrency,
        "duration_s": duration,
        "cpus": os.cpu_count(),
    }
    with contextlib.ExitStack() as stack:
        base = url or stack.enter_context(throwaway_postgres())
        figures["server"] = "given URL" if url else "throwaway (initdb), fsync on"
        with fresh_schema(base) as schema_url:
            figures["copy_rows_per_s"] = copy_ceiling(schema_url, template, copy_rows)
        for n in processes:
            with fresh_schema(base) as schema_url:
                figures[f"api_{n}"] = measure_api(schema_url, n, template, concurrency, duration)
    one = figures.get(f"api_{processes[0]}", {}).get("events_per_s") or float("nan")
    for n in processes:
        entry = figures[f"api_{n}"]
        entry["ratio_vs_copy"] = entry["events_per_s"] / figures["copy_rows_per_s"]
        entry[f"ratio_vs_{processes[0]}_process"] = entry["events_per_s"] / one
    return figures
