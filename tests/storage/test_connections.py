"""Reader connections are read-only on both backends; writes go through write connections;
commit callbacks run once, and never for work that rolled back."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engagehub.storage import Database
from engagehub.storage.base import ReadOnlyConnection
from engagehub.storage.postgres import PostgresConnection
from engagehub.storage.sqlite import SQLiteConnection
from tests.conftest import ADMIN_TOKEN

WRITE = "INSERT INTO processor_offsets (name, seq, updated_at) VALUES ('probe', 1, 1)"


def test_a_write_on_a_reader_fails_and_names_the_statement(db: Database) -> None:
    with db.reader() as conn:
        with pytest.raises(ReadOnlyConnection) as caught:
            conn.execute(WRITE)
        assert caught.value.details["sql"].startswith("INSERT INTO processor_offsets")
        assert caught.value.code == "read_only_connection"
        with pytest.raises(ReadOnlyConnection):
            conn.executemany(WRITE.replace("'probe', 1, 1", "?, ?, ?"), [("a", 1, 1), ("b", 2, 2)])
        with pytest.raises(ReadOnlyConnection), conn.transaction():
            pass
        if isinstance(conn, PostgresConnection):
            with pytest.raises(ReadOnlyConnection):
                conn.copy("COPY processor_offsets (name, seq, updated_at) FROM STDIN", "c\t1\t1\n")
        assert conn.scalar("SELECT COUNT(*) FROM processor_offsets WHERE name = 'probe'") == 0
    with db.reader() as conn:  # the pooled connection is still usable, and still read-only
        assert conn.scalar("SELECT 1") == 1
        with pytest.raises(ReadOnlyConnection):
            conn.execute(WRITE)


def test_a_write_connection_writes(db: Database) -> None:
    with db.writer() as conn, conn.transaction():
        conn.execute(WRITE)
    with db.reader() as conn:
        assert conn.scalar("SELECT seq FROM processor_offsets WHERE name = 'probe'") == 1


def test_management_writes_go_through_the_writer(client: TestClient) -> None:
    """Routes that write (sources, templates, destinations) work while readers are read-only."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    made = client.post("/api/sources", json={"name": "ro", "kind": "segment"}, headers=auth)
    assert made.status_code == 201, made.text
    tpl = {"name": "hello", "channel": "email", "subject": "Hi", "text": "Hello {{ first_name }}"}
    saved = client.post("/api/templates", json=tpl, headers=auth)
    assert saved.status_code == 201, saved.text
    assert client.delete("/api/templates/hello", headers=auth).status_code in (200, 204)


def test_sqlite_checkpoints_after_the_write_lock_not_inside_the_commit(tmp_path: Path) -> None:
    """Automatic checkpoints are off on write connections; each commit (at most every
    _CHECKPOINT_S) is followed by a passive checkpoint once the write lock is released."""
    path = tmp_path / "c.db"
    conn = SQLiteConnection(str(path), "NORMAL")
    try:
        assert conn.scalar("PRAGMA wal_autocheckpoint") == 0
        conn.execute("CREATE TABLE t (x)")
        before = path.stat().st_size
        with conn.transaction():
            conn.executemany("INSERT INTO t VALUES (?)", [(str(i) * 50,) for i in range(5000)])
        assert path.stat().st_size > before + 100_000  # the pages reached the database file
    finally:
        conn.close()
    reader = SQLiteConnection(str(tmp_path / "c.db"), "NORMAL", readonly=True)
    try:
        assert reader.scalar("PRAGMA wal_autocheckpoint") == 1000  # readers never commit
    finally:
        reader.close()


def test_sqlite_checkpoints_at_most_every_two_seconds(tmp_path: Path) -> None:
    """A commit soon after a checkpoint leaves its pages in the WAL: pages that several rounds
    dirty in between are copied into the database once, not once per round."""
    path = tmp_path / "c.db"
    conn = SQLiteConnection(str(path), "NORMAL")
    try:
        conn.execute("CREATE TABLE t (x)")
        with conn.transaction():  # the first commit checkpoints (none ran before)
            conn.execute("INSERT INTO t VALUES ('a')")
        before = path.stat().st_size
        time.sleep(0.5)  # longer than the 0.25 s interval this replaced
        with conn.transaction():
            conn.executemany("INSERT INTO t VALUES (?)", [(str(i) * 50,) for i in range(5000)])
        assert path.stat().st_size == before  # still only in the WAL
        assert Path(str(path) + "-wal").stat().st_size > 100_000
        conn._checkpointed -= 2.0  # as if 2 s had passed since the last checkpoint
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES ('b')")
        assert path.stat().st_size > before + 100_000
    finally:
        conn.close()


def test_commit_callbacks_run_once_and_never_for_what_rolled_back(db: Database) -> None:
    ran: list[str] = []
    with db.session() as conn:
        with contextlib.suppress(RuntimeError), conn.transaction():
            conn.after_commit(lambda: ran.append("failed transaction"))
            raise RuntimeError("roll back")
        with conn.transaction():
            conn.after_commit(lambda: ran.append("kept"))
            with contextlib.suppress(RuntimeError), conn.transaction():
                conn.after_commit(lambda: ran.append("failed savepoint"))
                raise RuntimeError("roll back to the savepoint")
            with conn.transaction():
                conn.after_commit(lambda: ran.append("released savepoint"))
            assert ran == []  # nothing before the commit
        with conn.transaction():
            pass
    assert ran == ["kept", "released savepoint"]
