"""PostgreSQL backend (psycopg 3): the same SQL, placeholders rewritten, pooled readers."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Literal

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from engagehub.errors import TransientError
from engagehub.storage.base import Connection, Database, ReadOnlyConnection

_POOL_WAIT_S = 2.0
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|%")


@lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """Rewrite ``?`` placeholders to ``%s`` and escape ``%``; string literals are left alone."""

    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":  # noqa: S105 - a SQL token, not a password
            return "%s"
        if token == "%":  # noqa: S105
            return "%%"
        return token.replace("%", "%%")

    return _TOKEN.sub(sub, sql)


@contextlib.contextmanager
def _ours(sql: str) -> Iterator[None]:
    """psycopg's errors as ours: a write refused by a read-only reader, a server gone."""
    try:
        yield
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise ReadOnlyConnection(sql) from exc
    except psycopg.OperationalError as exc:
        raise TransientError(f"database unavailable: {exc}", reason=str(exc)) from exc


class PostgresConnection(Connection):
    """A psycopg connection in autocommit mode; ``transaction()`` opens a real transaction."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], readonly: bool = False) -> None:
        self._conn = conn
        self._depth = 0
        self.readonly = readonly

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The underlying psycopg connection (for COPY)."""
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        with _ours(sql):
            return self._conn.execute(to_pyformat(sql) if params else sql, params or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        with _ours(sql), self._conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), rows)
            return max(cur.rowcount, 0)

    def copy(self, statement: str, data: str | Iterable[Sequence[Any]]) -> None:
        """Run ``COPY ... FROM STDIN`` with ``data``: a text in COPY's text format, sent in one
        write, or rows (``write_row``). A statement per row through ``executemany`` costs
        ~28 us of psycopg's Python each."""
        with _ours(statement), self._conn.cursor() as cur, cur.copy(statement) as copy:
            if isinstance(data, str):
                copy.write(data)
            else:
                for row in data:
                    copy.write_row(row)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self.readonly and not self._depth:
            raise ReadOnlyConnection("BEGIN")
        self._depth += 1
        mark = self._pending()
        ok = False
        try:
            with self._conn.transaction():
                yield
            ok = True
        finally:
            self._depth -= 1
            if not ok:
                self._forget(mark)  # a rolled-back savepoint's or transaction's callbacks
        if self._depth == 0:
            self._committed(ok)

    def close(self) -> None:
        self._conn.close()


def _read_only(conn: psycopg.Connection[Any]) -> None:
    """A reader's session refuses writes in every (autocommit) transaction: a cheap check made
    by the server (set per session, so the URL's own ``options`` stay as they are)."""
    conn.execute("SET default_transaction_read_only = on")


def _connect(url: str, readonly: bool = False) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(url, autocommit=True)
        if readonly:
            _read_only(conn)
        return conn
    except psycopg.OperationalError as exc:
        raise TransientError(f"cannot connect to PostgreSQL: {exc}", url=_redact(url)) from exc


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


class PostgresDatabase(Database):
    """A PostgreSQL database with a psycopg_pool for readers."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, url: str, readers: int = 8) -> None:
        self.url = url
        self._readers = readers
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()  # readers start on several threads at once
        self._writers: ConnectionPool[Any] | None = None

    def connect(self) -> PostgresConnection:
        return PostgresConnection(_connect(self.url))

    def _get_pool(self) -> ConnectionPool[Any]:
        # Concurrent first requests must not each open a pool (the extras would leak).
        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self._readers,
                    kwargs={"autocommit": True},
                    configure=_read_only,
                    open=True,
                    timeout=_POOL_WAIT_S,
                    check=ConnectionPool.check_connection,  # drop dead ones after a restart
                )
            return self._pool

    @contextlib.contextmanager
    def reader(self) -> Iterator[PostgresConnection]:
        try:
            pool = self._get_pool()
            with pool.connection() as conn:
                yield PostgresConnection(conn, readonly=True)
            return
        except (PoolTimeout, PoolClosed):  # closed: another reader replaced it meanwhile
            pass
        # No pooled connection in time: the server is down, or it came back while the pool is
        # still backing off. A direct connection tells which, and a fresh pool recovers at once.
        direct = _connect(self.url, readonly=True)  # TransientError when it is really down
        self._replace_pool(pool)
        try:
            yield PostgresConnection(direct, readonly=True)
        finally:
            direct.close()

    @contextlib.contextmanager
    def writer(self) -> Iterator[PostgresConnection]:
        with self._pool_lock:
            if self._writers is None:
                self._writers = ConnectionPool(
                    self.url,
                    min_size=0,
                    max_size=self._readers,  # services' threads hold one across a delivery
                    kwargs={"autocommit": True},
                    open=True,
                    check=ConnectionPool.check_connection,
                )
            pool = self._writers
        try:
            with pool.connection() as conn:
                yield PostgresConnection(conn)
        except psycopg.OperationalError as exc:
            raise TransientError(f"database unavailable: {exc}", reason=str(exc)) from exc

    def _replace_pool(self, stale: ConnectionPool[Any]) -> None:
        with self._pool_lock:
            if self._pool is stale:
                self._pool = None
        threading.Thread(target=stale.close, kwargs={"timeout": 5.0}, daemon=True).start()

    def close(self) -> None:
        with self._pool_lock:
            for pool in (self._pool, self._writers):
                if pool is not None:
                    pool.close()
            self._pool = self._writers = None
