"""Query results straight into Arrow tables (ADBC), for reads of many rows (export, benches).

Turning a million log rows into Python tuples costs more than the query; the ADBC drivers
(``adbc-driver-sqlite``, ``adbc-driver-postgresql``) build Arrow columns in C. Each read opens
its own ADBC connection to the same database (read-only on SQLite) and closes it: a read of
committed, append-only log positions needs no shared transaction with the caller.

SQLite reads run in **child processes**, never in the caller's: ``adbc-driver-sqlite`` links
its own copy of SQLite, and when that copy closes its descriptors of a database (or its
``-shm``) the kernel drops every POSIX lock the process holds on the file, the Python sqlite3
connections' locks included — SQLite's "multiple copies of SQLite in one application"
corruption case (sqlite.org/howtocorrupt.html, 2.2.1). The children are spawned once and kept
for the process's life; tables come back pickled (Arrow IPC buffers).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from engagehub.storage.base import Connection

BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite read waits for a lock (as ``storage.sqlite`` connections do)."""
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?")
_ALL_ROWS = str(1 << 30)
"""SQLite batch size: the driver infers column types from the first batch, so one batch holds
every row (a column NULL in the first rows then text later would fail otherwise)."""


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (string literals left alone)."""
    count = 0

    def sub(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _TOKEN.sub(sub, sql)


def _sqlite_path(conn: Connection) -> str:
    for _, name, path in conn.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            return str(path)
    raise ValueError("an in-memory SQLite database cannot be read through ADBC")


def _postgres_conninfo(conn: Connection) -> str:
    info = conn.raw.info  # type: ignore[attr-defined]
    password = info.password
    return f"{info.dsn} password={password}" if password else str(info.dsn)


def read_table(conn: Connection, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Rows of ``sql`` (``?`` placeholders) as one Arrow table cast to ``schema``."""
    return read_tables(conn, sql, [params], schema)[0]


def read_tables(
    conn: Connection, sql: str, params: Sequence[Sequence[Any]], schema: pa.Schema
) -> list[pa.Table]:
    """``sql`` once per parameter set, the reads at the same time (each its own ADBC
    connection; the drivers run outside the GIL), so a long range read in pieces uses every
    core. Only this thread touches ``conn``."""
    if conn.dialect == "sqlite":
        target, dialect = f"file:{_sqlite_path(conn)}?mode=ro", "sqlite"
    else:
        target, dialect = _postgres_conninfo(conn), "postgresql"
    if dialect == "sqlite":
        return _read_in_children(target, sql, params, schema)
    if len(params) == 1:
        return [_read(target, dialect, sql, params[0], schema)]
    with ThreadPoolExecutor(len(params)) as threads:
        return list(threads.map(lambda p: _read(target, dialect, sql, p, schema), params))


_READERS: ProcessPoolExecutor | None = None
_READERS_SIZE = 0
_READERS_LOCK = threading.Lock()


def _sqlite_readers(wanted: int) -> Executor:
    """The child processes SQLite ADBC reads run in (see the module docstring), grown to
    ``wanted`` at most once per larger size; spawned, so no parent lock state is inherited."""
    global _READERS, _READERS_SIZE
    with _READERS_LOCK:
        if _READERS is None or wanted > _READERS_SIZE:
            if _READERS is not None:
                _READERS.shutdown(wait=True)
            _READERS_SIZE = max(wanted, 1)
            _READERS = ProcessPoolExecutor(
                _READERS_SIZE, mp_context=multiprocessing.get_context("spawn")
            )
        return _READERS


def _read_in_children(
    target: str, sql: str, params: Sequence[Sequence[Any]], schema: pa.Schema
) -> list[pa.Table]:
    """Each read in a reader process, handed back as an Arrow IPC file that this process maps
    (no copy through a pipe; the file is unlinked once mapped)."""
    pool = _sqlite_readers(len(params))
    with tempfile.TemporaryDirectory(prefix="engagehub-arrow-", dir=_SPOOL) as spool:
        paths = [os.path.join(spool, f"{i}.arrow") for i in range(len(params))]
        futures = [
            pool.submit(_read_to_file, target, sql, p, schema, path)
            for p, path in zip(params, paths, strict=True)
        ]
        for future in futures:
            future.result()
        return [pa.ipc.open_file(pa.memory_map(path)).read_all() for path in paths]


_SHM = "/dev/shm"  # noqa: S108 - only ever the parent of a private mkdtemp directory
_SPOOL = _SHM if os.access(_SHM, os.W_OK) else None
"""Where read results are handed over: memory, where the system has it as a file system."""


def _read_to_file(
    target: str, sql: str, params: Sequence[Any], schema: pa.Schema, path: str
) -> None:
    table = _read(target, "sqlite", sql, params, schema)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(table)


def _load_driver(_: int) -> None:
    import adbc_driver_sqlite.dbapi  # noqa: F401


def warm_sqlite_readers(count: int) -> None:
    """Start ``count`` reader processes with the driver loaded: a bench times the reads, not
    the ~0.5 s start-up a CLI run pays once."""
    list(_sqlite_readers(count).map(_load_driver, range(count)))


def _read(
    target: str, dialect: str, sql: str, params: Sequence[Any], schema: pa.Schema
) -> pa.Table:
    if dialect == "sqlite":
        import adbc_driver_sqlite.dbapi as sqlite_adbc

        adbc = sqlite_adbc.connect(target)
        query = sql
    else:
        import adbc_driver_postgresql.dbapi as pg_adbc

        adbc = pg_adbc.connect(target)
        query = _numbered(sql)
    try:
        with adbc.cursor() as cur:
            if dialect == "sqlite":
                # Wait out a lock as our own connections do (a reader can meet one while a
                # checkpoint resets the WAL): without it the read fails "database is locked".
                cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                cur.fetchall()
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ALL_ROWS})
            cur.execute(query, tuple(params) if params else None)
            table = cur.fetch_arrow_table()
    finally:
        adbc.close()
    arrays = [table.column(i).cast(f.type) for i, f in enumerate(schema)]
    return pa.Table.from_arrays(arrays, schema=schema)
