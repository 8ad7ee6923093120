"""Arrow reads of SQLite wait out a lock, as the store's own connections do."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from engagehub.storage import arrow

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
