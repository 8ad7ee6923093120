"""Arrow reads of SQLite wait out a lock, as the store's own connections do, and never drop
the locks of the caller's own sqlite3 connections."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from engagehub.settings import Settings
from engagehub.storage import arrow, open_database

_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(0.5)
conn.execute("COMMIT")
"""


def test_a_read_waits_for_a_lock_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
        setup.execute("INSERT INTO t VALUES (7)")
    setup.close()
    # another process (locks are per process) holds the rollback journal's exclusive lock
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        table = arrow._read(
            f"file:{path}?mode=ro", "sqlite", "SELECT n FROM t", [], pa.schema([("n", pa.int64())])
        )
    finally:
        holder.communicate(timeout=30)
    assert table.column("n").to_pylist() == [7]


_DMS_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
except OSError:
    print("held")
else:
    print("free")
"""
"""Byte 128 of ``-shm`` is SQLite's "dead man switch": every open WAL connection holds it
shared, and whoever gets it exclusive believes itself the last one (and may checkpoint and
delete the WAL). POSIX locks don't conflict within a process, so another process asks."""


def _dms(shm: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", _DMS_PROBE, str(shm)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_read_keeps_the_callers_sqlite_locks(tmp_path: Path) -> None:
    # adbc-driver-sqlite links its own SQLite: had it opened and closed the file in this
    # process, the close would have dropped our connection's locks (sqlite howtocorrupt 2.2.1)
    url = f"sqlite:///{tmp_path}/x.db"
    db = open_database(url, Settings(database_url=url))
    try:
        with db.session() as conn:
            conn.execute("CREATE TABLE t (n INTEGER)")
            conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(5)])
        with db.session() as conn:
            shm = tmp_path / "x.db-shm"
            assert _dms(shm) == "held"
            schema = pa.schema([("n", pa.int64())])
            tables = arrow.read_tables(
                conn, "SELECT n FROM t WHERE n >= ? ORDER BY n", [(0,), (3,)], schema
            )
            assert [t.column("n").to_pylist() for t in tables] == [[0, 1, 2, 3, 4], [3, 4]]
            assert _dms(shm) == "held"
    finally:
        db.close()
