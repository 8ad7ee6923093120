"""``IN (?, ?, ...)`` lists: one chunk size and one way to write them, for every backend.

A list of values is bound in slices of ``CHUNK``: under SQLite's historical limit of 999
bound variables with room for a query's other parameters, and short enough that PostgreSQL
plans each statement quickly::

    for part in chunks(contacts):
        conn.all(f"SELECT ... WHERE {where_in('contact', part)} AND t > ?", [*part, t])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from engagehub.storage.base import Connection

T = TypeVar("T")

CHUNK = 900
"""Values bound per ``IN`` list."""


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` values (none for an empty sequence)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(values: Sized | int) -> str:
    """``?, ?, ?``: one placeholder per value (or for a count)."""
    count = values if isinstance(values, int) else len(values)
    return ", ".join("?" * count)


def where_in(column: str, values: Sized) -> str:
    """``column IN (?, ?, ...)`` for one chunk of values."""
    return f"{column} IN ({marks(values)})"


def newest_in(
    conn: Connection,
    select: str,
    column: str,
    values: str | Sequence[str],
    order: tuple[str, ...],
    limit: int,
) -> list[dict[str, Any]]:
    """The ``limit`` newest rows of ``select`` (``SELECT ... FROM t``) whose ``column`` is one
    of ``values``, ordered by ``order`` descending: a person's several contact forms in one
    audit trail, sorted by the database instead of by each caller."""
    wanted = [values] if isinstance(values, str) else list(dict.fromkeys(values))
    by = ", ".join(f"{c} DESC" for c in order)
    rows: list[dict[str, Any]] = []
    for part in chunks(wanted):
        sql = f"{select} WHERE {where_in(column, part)} ORDER BY {by} LIMIT ?"
        rows += conn.all(sql, [*part, limit])
    if len(wanted) > CHUNK:  # several chunks: merge their newest
        rows.sort(key=lambda r: tuple(r[c] for c in order), reverse=True)
        del rows[limit:]
    return rows
