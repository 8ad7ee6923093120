"""Keyset pages: a listing reads ``limit + 1`` rows after its cursor, shows ``limit`` and
continues after the last one shown — the one rule of every paged read (API, CLI, dashboard),
so a page never ends early nor offers a cursor to an empty page::

    rows = conn.all("SELECT ... WHERE id < ? ORDER BY id DESC LIMIT ?", [before, limit + 1])
    shown, last = page(rows, limit)
    next_cursor = last["id"] if last is not None else None
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def page(rows: Sequence[T], limit: int) -> tuple[list[T], T | None]:
    """The first ``limit`` of the ``limit + 1`` rows read, and the row the next page continues
    after (None on the last page)."""
    shown = list(rows[:limit])
    return shown, (shown[-1] if len(rows) > limit and shown else None)
