"""SQLite backend: WAL, one writer at a time, readers on their own connections."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, Literal

from engagehub.errors import ConfigError, TransientError
from engagehub.storage.base import Connection, Database, ReadOnlyConnection

_BUSY_TIMEOUT_MS = 30_000
_CHECKPOINT_S = 2.0
_HELD = threading.local()  # database paths whose write lock this thread holds


def path_from_url(url: str) -> str:
    """``sqlite:///./x.db`` -> ``./x.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise ConfigError(
            "an in-memory SQLite database cannot be shared between connections",
            setting="ENGAGEHUB_DATABASE_URL",
            value=url,
        )
    if not url.startswith("sqlite:///"):
        raise ConfigError(
            "SQLite URLs look like sqlite:///path/to/file.db",
            setting="ENGAGEHUB_DATABASE_URL",
            value=url,
        )
    return url[len("sqlite:///") :]


STATEMENT_CACHE = 256
"""Prepared statements kept per connection. A round of every processor runs ~100 distinct
statements, analytics' fold alone ~40 large ones; with 32 they were evicted and compiled again
every round (a third of the fold's CPU at 200-position windows)."""


class SQLiteConnection(Connection):
    """A sqlite3 connection in autocommit mode; transactions are explicit ``BEGIN IMMEDIATE``."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: str, synchronous: str, readonly: bool = False) -> None:
        self._conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            cached_statements=STATEMENT_CACHE,
        )
        self._depth = 0
        self._path = path
        self._lock_fd: int | None = None
        self._locked = False
        self.readonly = readonly
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",
            f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
            "PRAGMA temp_store=MEMORY",
            "PRAGMA cache_size=-65536",
        ):
            self._conn.execute(pragma)
        if readonly:  # a reader: any write (even BEGIN IMMEDIATE) fails
            self._conn.execute("PRAGMA query_only=1")
        else:  # checkpoints run after the write lock is released (``_checkpoint``)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointed = 0.0
        _register_functions(self._conn)

    @property
    def raw(self) -> sqlite3.Connection:
        """The underlying sqlite3 connection (for executescript and total_changes)."""
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise _translate(exc, sql) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Multi-row statements where the SQL allows (one GIL hand-off per chunk, not per row)."""
        before = self._conn.total_changes
        try:
            plan = _multi_row_plan(sql)
            if plan is None or len(rows) < 2:
                self._conn.executemany(sql, rows)
            else:
                head, one, tail, width = plan
                start = 0
                for size in _chunk_sizes(len(rows), max(1, _MAX_PARAMS // width)):
                    chunk = rows[start : start + size]
                    start += size
                    self._conn.execute(
                        _multi_row_sql(head, one, tail, size), list(chain.from_iterable(chunk))
                    )
        except sqlite3.OperationalError as exc:
            raise _translate(exc, sql) from exc
        return self._conn.total_changes - before

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            name = f"sp{self._depth}"
            self.execute(f"SAVEPOINT {name}")
            self._depth += 1
            mark = self._pending()
            try:
                yield
            except BaseException:
                self._forget(mark)
                self.execute(f"ROLLBACK TO {name}")
                self.execute(f"RELEASE {name}")
                raise
            else:
                self.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        if self.readonly:
            raise ReadOnlyConnection("BEGIN IMMEDIATE")
        self._lock()
        ok = False
        try:
            self.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise _translate(exc) from exc
                ok = True
            finally:
                self._depth = 0
                if not ok:
                    self._forget(0)  # rolled back: its callbacks never run
        finally:
            self._unlock()
        if ok:
            self._checkpoint()
            self._committed(ok)

    def _checkpoint(self) -> None:
        """Copy committed WAL pages into the database, outside the write lock.

        SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, while
        this process still holds the write lock, so the other writer (ingest or processors)
        waited for the copy and its fsync. A passive checkpoint never blocks writers; at most
        one runs every ``_CHECKPOINT_S`` per connection (SQLite also checkpoints on close).
        Every 2 s rather than 0.25 s: a page dirtied by several commits in between (processors'
        B-tree leaves, the log's last page) is copied once (bench e2e: ~4 us less per event in
        the server and in the processor process each); the WAL holds ~2 s of commits.
        """
        now = time.monotonic()
        if now - self._checkpointed < _CHECKPOINT_S:
            return
        self._checkpointed = now
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _lock(self) -> None:
        """Take the database's write lock (a lock file): writers queue in the kernel and are
        woken the moment it is free, instead of SQLite's sleep-and-retry busy handler.

        A thread that already holds it through another connection does not wait for itself
        (SQLite's busy timeout decides, as before).
        """
        held = _HELD.__dict__.setdefault("paths", set())
        if self._path in held:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        held.add(self._path)
        self._locked = True

    def _unlock(self) -> None:
        if self._locked and self._lock_fd is not None:
            self._locked = False
            _HELD.__dict__.setdefault("paths", set()).discard(self._path)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _hash(value: object) -> int:
    """``eh_hash(value)``: a stable non-negative hash (shard of a key)."""
    digest = hashlib.md5(("" if value is None else str(value)).encode()).digest()  # noqa: S324
    return int.from_bytes(digest[:4], "big")


def _register_functions(conn: sqlite3.Connection) -> None:
    """SQL functions that set-based processors use inside SQLite."""
    conn.create_function("eh_hash", 1, _hash, deterministic=True)


# sqlite3's executemany steps once per row and releases the GIL at every step; on a busy
# server each re-acquisition waits for the event loop thread (a GIL convoy). One statement
# with many VALUES rows steps once. SQLite allows 32766 parameters per statement.
_MAX_PARAMS = 32_000
_VALUES = re.compile(
    r"^(?P<head>.*?\bVALUES\s*)(?P<one>\((?:\s*\?\s*,)*\s*\?\s*\))(?P<tail>.*)$", re.S | re.I
)


@lru_cache(maxsize=512)
def _multi_row_plan(sql: str) -> tuple[str, str, str, int] | None:
    match = _VALUES.match(sql)
    if match is None or "?" in match.group("tail") or "?" in match.group("head"):
        return None
    one = match.group("one")
    return match.group("head"), one, match.group("tail"), one.count("?")


_CHUNK_LADDER = (1024, 128, 16, 1)


def _chunk_sizes(rows: int, most: int) -> list[int]:
    """Row counts of the multi-row statements for ``rows`` rows, from a short ladder of sizes
    (those under ``most``): a statement shape has at most four sizes. Arbitrary sizes made a
    new statement of up to 2,000 rows for nearly every call: compiled each time, and each
    one kept in the statement cache (tens of MB of VDBE programs per process)."""
    sizes: list[int] = []
    for size in [s for s in _CHUNK_LADDER if s <= most] or [max(1, most)]:
        count, rows = divmod(rows, size)
        sizes += [size] * count
    return sizes


@lru_cache(maxsize=512)
def _multi_row_sql(head: str, one: str, tail: str, count: int) -> str:
    return head + ", ".join([one] * count) + tail


def _translate(exc: sqlite3.OperationalError, sql: str = "") -> Exception:
    """Busy, locked and full-disk errors are transient: the client should retry."""
    text = str(exc).lower()
    if "readonly database" in text:
        return ReadOnlyConnection(sql)
    if "locked" in text or "busy" in text or "disk" in text or "full" in text:
        return TransientError(f"database unavailable: {exc}", reason=str(exc))
    return exc


class SQLiteDatabase(Database):
    """A SQLite file with a small pool of reader connections."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, url: str, synchronous: str = "NORMAL", readers: int = 8) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.synchronous = synchronous
        parent = Path(self.path).parent
        if not parent.exists():
            raise ConfigError(
                f"directory {str(parent)!r} for the SQLite file does not exist",
                setting="ENGAGEHUB_DATABASE_URL",
                value=url,
            )
        self._readers = _Pool(lambda: SQLiteConnection(self.path, self.synchronous, True), readers)
        self._writers = _Pool(self.connect, _WRITERS)

    def connect(self) -> SQLiteConnection:
        return SQLiteConnection(self.path, self.synchronous)

    @contextlib.contextmanager
    def reader(self) -> Iterator[SQLiteConnection]:
        with self._readers.borrow() as conn:
            yield conn

    @contextlib.contextmanager
    def writer(self) -> Iterator[SQLiteConnection]:
        with self._writers.borrow() as conn:
            yield conn

    def close(self) -> None:
        self._readers.close()
        self._writers.close()


_WRITERS = 8  # services hold one across a delivery; writers take turns on the write lock anyway


class _Pool:
    """At most ``size`` connections made by ``make``, lent one caller at a time."""

    def __init__(self, make: Callable[[], SQLiteConnection], size: int) -> None:
        self._make = make
        self._size = size
        self._idle: queue.LifoQueue[SQLiteConnection] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[SQLiteConnection]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def _take(self) -> SQLiteConnection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                if self._created < self._size:
                    self._created += 1
                    return self._make()
            return self._idle.get()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
        self._created = 0
