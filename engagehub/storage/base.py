"""The storage contract: connections that speak one SQL dialect subset, on SQLite or PostgreSQL.

SQL in engagehub is written once with ``?`` placeholders and portable syntax (``INSERT ... ON
CONFLICT``, ``RETURNING``, ``COALESCE``); the PostgreSQL connection rewrites placeholders. Where
the dialects really differ, code branches on ``conn.dialect``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from engagehub.errors import EngagehubError

Dialect = Literal["sqlite", "postgresql"]


class ReadOnlyConnection(EngagehubError):
    """A write was attempted on a reader connection: writes go through a write connection."""

    code = "read_only_connection"
    http_status = 500

    def __init__(self, sql: str) -> None:
        super().__init__(
            "reader connections are read-only: write through the writer (`hub.write(fn)` in "
            "routes, `db.writer()` in services and commands)",
            sql=" ".join(sql.split())[:200],
        )


class Connection(ABC):
    """One database connection; not shared between threads at the same time."""

    dialect: Dialect
    _after_commit: list[Callable[[], None]] | None = None

    @property
    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether a ``transaction()`` is open on this connection."""

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the current transaction commits (now, outside one; not on rollback)."""
        if not self.in_transaction:
            fn()
            return
        if self._after_commit is None:
            self._after_commit = []
        self._after_commit.append(fn)

    def _committed(self, ok: bool) -> None:
        """Backends call this when the outermost transaction ends."""
        pending, self._after_commit = self._after_commit, None
        if ok and pending:
            for fn in pending:
                fn()

    def _pending(self) -> int:
        """How many callbacks wait for the commit (a savepoint's mark, see ``_forget``)."""
        return len(self._after_commit or ())

    def _forget(self, mark: int) -> None:
        """Drop the callbacks registered since ``mark``: their (sub)transaction rolled back,
        so they must not run at a later commit."""
        if self._after_commit is not None:
            del self._after_commit[mark:]

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a DB-API cursor (tuples)."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement for many rows; returns the number of rows changed."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction (nested calls become savepoints); commits on success."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @property
    def least(self) -> str:
        """Two-argument minimum: ``MIN`` on SQLite, ``LEAST`` on PostgreSQL."""
        return "MIN" if self.dialect == "sqlite" else "LEAST"

    @property
    def greatest(self) -> str:
        """Two-argument maximum: ``MAX`` on SQLite, ``GREATEST`` on PostgreSQL."""
        return "MAX" if self.dialect == "sqlite" else "GREATEST"

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        cur = self.execute(sql, params)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]


class Database(ABC):
    """A database: hands out one writer connection and pooled reader connections."""

    dialect: Dialect
    url: str

    @abstractmethod
    def connect(self) -> Connection:
        """A new connection owned by the caller."""

    @abstractmethod
    def reader(self) -> contextlib.AbstractContextManager[Connection]:
        """Borrow a pooled read-only connection (a write on it raises ``ReadOnlyConnection``)."""

    @abstractmethod
    def writer(self) -> contextlib.AbstractContextManager[Connection]:
        """Borrow a pooled write connection (services' threads; the server's async code writes
        through ``Hub.write`` on the writer thread instead)."""

    @abstractmethod
    def close(self) -> None:
        """Close every pooled connection."""

    @contextlib.contextmanager
    def session(self) -> Iterator[Connection]:
        """A private connection closed on exit: for CLI commands and tests."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()
