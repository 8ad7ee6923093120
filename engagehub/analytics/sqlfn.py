"""SQL pieces the fold writes the same way on both backends (NULL-safe minimums, text order).

Texts compare in code point order everywhere (``COLLATE "C"`` on PostgreSQL, SQLite's
default), so a lifecycle's smallest dimension is the same row on either database.
"""

from __future__ import annotations

from engagehub.storage.base import Connection


def text_min(conn: Connection, a: str, b: str) -> str:
    """Smallest of two texts, NULL-safe, in code point order on both backends."""
    if conn.dialect == "sqlite":
        return f"COALESCE(MIN({a}, {b}), {a}, {b})"
    return f'LEAST({a} COLLATE "C", {b} COLLATE "C")'


def num(conn: Connection, fn: str, a: str, b: str) -> str:
    """``fn`` ("MIN" or "MAX") of two numbers, NULL-safe (a NULL side yields the other)."""
    if conn.dialect == "sqlite":
        return f"COALESCE({fn}({a}, {b}), {a}, {b})"
    return f"{'LEAST' if fn == 'MIN' else 'GREATEST'}({a}, {b})"


def text_lt(conn: Connection, a: str, b: str) -> str:
    """``a < b`` for texts in code point order."""
    return f"{a} < {b}" if conn.dialect == "sqlite" else f'{a} COLLATE "C" < {b} COLLATE "C"'


def agg_text(conn: Connection, expr: str) -> str:
    """The aggregate smallest text of ``expr`` in code point order."""
    return f"MIN({expr})" if conn.dialect == "sqlite" else f'MIN({expr} COLLATE "C")'
