"""A full disk mid-export (a real 1 MB tmpfs), and a crashed run repeated with no dups or gaps."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from engagehub.errors import TransientError
from engagehub.export import runner
from engagehub.storage import Database
from tests.destinations.conftest import add_events


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (CI runs as root, so this always runs there)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(mount: Path, leave: int) -> Path:
    """Fill the disk until only about ``leave`` bytes are free."""
    filler = mount / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * (1024 * 1024))
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "r+b") as f:
        f.truncate(max(0, filler.stat().st_size - (leave - free)))
    return filler


def cursor(db: Database, out: str) -> tuple[int, int | None]:
    with db.session() as conn:
        row = conn.one(
            "SELECT seq, pending_upto FROM export_targets WHERE name LIKE ?", (f"%{out}%",)
        )
    assert row is not None
    return row["seq"], row["pending_upto"]


def pages(path: Path) -> int:
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in path.rglob("*.parquet"))


def test_full_disk_then_rerun(db: Database, tiny_disk: Path, tmp_path: Path) -> None:
    add_events(db, 200)
    # how much the first range takes, measured on a normal disk
    with db.session() as conn:
        runner.run(conn, str(tmp_path / "probe"), since=0, upto=100)
    first_range = pages(tmp_path / "probe")
    out = tiny_disk / "out"
    filler = fill(tiny_disk, leave=first_range + 4096)  # room for range 1, not for range 2
    with db.session() as conn, pytest.raises(TransientError) as caught:
        runner.run(conn, str(out), chunk=100)
    assert "no space left" in caught.value.message
    assert str(out) in caught.value.details["path"]
    assert cursor(db, str(out)) == (100, 200)  # range 1 committed, range 2 pending
    assert not list(out.rglob("*.tmp"))
    assert {p.name for p in out.rglob("*.parquet")} == {"seq-000000000001-000000000100.parquet"}
    add_events(db, 50, start=200)  # the log moved on meanwhile
    filler.unlink()
    with db.session() as conn:
        result = runner.run(conn, str(out), chunk=100)
    assert (result.after, result.upto, result.events) == (100, 250, 150)
    assert cursor(db, str(out)) == (250, None)
    assert_exactly_once(out, 250)


def assert_exactly_once(out: Path, count: int) -> None:
    total, distinct, lowest, highest = duckdb.sql(
        f"SELECT count(*), count(DISTINCT seq), min(seq), max(seq) "
        f"FROM read_parquet('{out}/**/*.parquet')"
    ).fetchall()[0]
    assert (total, distinct, lowest, highest) == (count, count, 1, count)  # no dups, no gaps


def test_crash_after_files_before_cursor(db: Database, tmp_path: Path) -> None:
    """A run killed after renaming its files but before committing the cursor."""
    out = tmp_path / "out"
    add_events(db, 120)
    with db.session() as conn:
        runner.run(conn, str(out), chunk=100)
        name = conn.scalar("SELECT name FROM export_targets")
        # the state such a crash leaves: files of (100, 120] exist, the range is still pending
        conn.execute(
            "UPDATE export_targets SET seq = 100, pending_upto = 120 WHERE name = ?", (name,)
        )
    add_events(db, 30, start=120)
    with db.session() as conn:
        result = runner.run(conn, str(out), chunk=100)
    assert (result.after, result.upto) == (100, 150)
    assert_exactly_once(out, 150)
