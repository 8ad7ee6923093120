"""``IN (?, ?, ...)`` lists: one chunk size and one way to write them, for every backend.

A list of values is bound in slices of ``CHUNK``: under SQLite's historical limit of 999
bound variables with room for a query's other parameters, and short enough that PostgreSQL
plans each statement quickly::

    for part in chunks(contacts):
        conn.all(f"SELECT ... WHERE {where_in('contact', part)} AND t > ?", [*part, t])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from typing import TypeVar

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
