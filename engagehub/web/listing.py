"""Every dashboard list is filterable and paginated the same way, with plain GET links.

A list named ``templates`` reads ``?templates_q=`` (case-insensitive text any cell may contain)
and ``?templates_page=`` (from 1); several lists on one page keep each other's parameters. The
``lists.html`` macros draw the filter form and the pager; no JavaScript is needed. Lists that
may hold millions of rows (suppressions, the audit log) page in SQL by a keyset cursor instead
(``moved``) and filter with their own columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Request

T = TypeVar("T")
PAGE_SIZE = 25
MAX_QUERY = 200
_DROPPED = ("notice",)  # a page's one-time message is not repeated by its links


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """One page of a filtered list, and what its links need."""

    name: str
    rows: list[T]
    q: str
    page: int
    total: int
    everything: int
    size: int
    others: tuple[tuple[str, str], ...]

    @property
    def pages(self) -> int:
        """Pages after filtering (at least 1)."""
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        """1-based number of the first row shown (0 when none)."""
        return (self.page - 1) * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """1-based number of the last row shown."""
        return (self.page - 1) * self.size + len(self.rows)

    def link(self, page: int, filtered: bool = True) -> str:
        """The query string of another page of this list (the other lists stay as they are)."""
        mine = [(f"{self.name}_q", self.q)] if self.q and filtered else []
        mine.append((f"{self.name}_page", str(page)))
        return "?" + urlencode([*self.others, *mine]) + f"#{self.name}-filter"


def page_number(text: str | None) -> int:
    """``?x_page=`` as a page number from 1 (anything else is page 1)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 9:
        return 1
    return max(1, int(text))


def listing(
    request: Request,
    name: str,
    items: Iterable[T],
    text: Callable[[T], Iterable[Any]],
    size: int = PAGE_SIZE,
) -> Listing[T]:
    """Filter ``items`` by ``?{name}_q`` (matched against the values ``text`` gives) and cut
    out page ``?{name}_page``; a page past the end shows the last page."""
    params = request.query_params
    q = (params.get(f"{name}_q") or "").strip()[:MAX_QUERY]
    everything = list(items)
    needle = q.casefold()
    found = (
        [i for i in everything if any(needle in str(v).casefold() for v in text(i) if v)]
        if needle
        else everything
    )
    pages = max(1, -(-len(found) // size))
    page = min(page_number(params.get(f"{name}_page")), pages)
    others = tuple(
        (k, v)
        for k, v in params.multi_items()
        if k not in (f"{name}_q", f"{name}_page") and k not in _DROPPED
    )
    rows = found[(page - 1) * size : page * size]
    return Listing(name, rows, q, page, len(found), len(everything), size, others)


def moved(request: Request, **cursor: str | None) -> str:
    """The query string of this page with keyset cursor parameters replaced (None drops one):
    the pager of lists too long to count (suppressions, the audit log)."""
    keep = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in cursor and k not in _DROPPED
    ]
    return "?" + urlencode([*keep, *((k, v) for k, v in cursor.items() if v is not None)])


def fields(*keys: str) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """``text`` for dict rows: the values of these keys."""
    return lambda row: [row.get(k) for k in keys]
