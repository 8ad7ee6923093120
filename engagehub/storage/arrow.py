"""Query results straight into Arrow tables (ADBC), for reads of many rows (export, benches).

Turning a million log rows into Python tuples costs more than the query; the ADBC drivers
(``adbc-driver-sqlite``, ``adbc-driver-postgresql``) build Arrow columns in C. Each read opens
its own ADBC connection to the same database (read-only on SQLite) and closes it: a read of
committed, append-only log positions needs no shared transaction with the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from engagehub.storage.base import Connection

_TOKEN = re.compile(r"'(?:[^']|'')*'|\?")
_ALL_ROWS = str(1 << 30)
"""SQLite batch size: the driver infers column types from the first batch, so one batch holds
every row (a column NULL in the first rows then text later would fail otherwise)."""


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (string literals left alone)."""
    count = 0

    def sub(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _TOKEN.sub(sub, sql)


def _sqlite_path(conn: Connection) -> str:
    for _, name, path in conn.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            return str(path)
    raise ValueError("an in-memory SQLite database cannot be read through ADBC")


def _postgres_conninfo(conn: Connection) -> str:
    info = conn.raw.info  # type: ignore[attr-defined]
    password = info.password
    return f"{info.dsn} password={password}" if password else str(info.dsn)


def read_table(conn: Connection, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Rows of ``sql`` (``?`` placeholders) as one Arrow table cast to ``schema``."""
    if conn.dialect == "sqlite":
        import adbc_driver_sqlite.dbapi as sqlite_adbc

        adbc = sqlite_adbc.connect(f"file:{_sqlite_path(conn)}?mode=ro")
        query = sql
    else:
        import adbc_driver_postgresql.dbapi as pg_adbc

        adbc = pg_adbc.connect(_postgres_conninfo(conn))
        query = _numbered(sql)
    try:
        with adbc.cursor() as cur:
            if conn.dialect == "sqlite":
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ALL_ROWS})
            cur.execute(query, tuple(params) if params else None)
            table = cur.fetch_arrow_table()
    finally:
        adbc.close()
    arrays = [table.column(i).cast(f.type) for i, f in enumerate(schema)]
    return pa.Table.from_arrays(arrays, schema=schema)
