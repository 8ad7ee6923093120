"""Many rows into one table: a statement per row on SQLite, one statement on PostgreSQL.

psycopg's ``executemany`` costs ~28 us of Python per row (a dump of each parameter, a round of
the pipeline per statement), which is most of a processor's Python on PostgreSQL. There the rows
go as one JSON array instead (``orjson`` in C), typed by the table's own row type
(``json_populate_recordset``), in one ``INSERT ... SELECT``: the same conflict clause applies.
SQLite's ``executemany`` is a C loop over a prepared statement, cheaper than any JSON, so it
stays. Keys must be unique within ``rows`` when the tail is ``DO UPDATE`` (PostgreSQL refuses to
update a row twice in one statement); callers write from dicts keyed by the conflict key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from engagehub.storage.base import Connection
from engagehub.storage.sqlin import marks


def insert_sql(table: str, columns: Sequence[str], tail: str = "") -> str:
    """``INSERT INTO table (columns) VALUES (?, ...) tail``: the statement of one row."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(len(columns))}) {tail}"


def insert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    tail: str = "",
) -> None:
    """Insert ``rows`` (values in ``columns`` order) with the conflict clause ``tail``."""
    if not rows:
        return
    if conn.dialect == "sqlite":
        conn.executemany(insert_sql(table, columns, tail), rows)
        return
    names = ", ".join(columns)
    doc = orjson.dumps([dict(zip(columns, row, strict=True)) for row in rows]).decode()
    conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} "
        f"FROM json_populate_recordset(NULL::{table}, ?::json) {tail}",
        [doc],
    )
