"""Many rows in one statement (PostgreSQL) or one per row (SQLite): the same table after."""

from __future__ import annotations

from engagehub.storage import Database, bulk

_UPSERT = (
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
    "n = suppressions_like.n + excluded.n, note = excluded.note"
)
_COLUMNS = ("id", "name", "n", "note")


def _table(db: Database) -> None:
    with db.session() as conn:
        conn.execute(
            "CREATE TABLE suppressions_like (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "n BIGINT NOT NULL, note TEXT)"
        )


def _rows(db: Database) -> list[tuple[object, ...]]:
    with db.session() as conn:
        return [
            tuple(r)
            for r in conn.execute("SELECT id, name, n, note FROM suppressions_like ORDER BY id")
        ]


def test_rows_arrive_as_given_and_the_conflict_clause_applies(db: Database) -> None:
    _table(db)
    odd = '{"a": [1, "x"]} \' " \\ \n é 😀'  # JSON-looking text, quotes, escapes, non-ASCII
    big = 2**62 + 1  # beyond a float's exact integers
    with db.session() as conn, conn.transaction():
        bulk.insert(
            conn,
            "suppressions_like",
            _COLUMNS,
            [("a", "one", 1, None), ("b", odd, big, "")],
            _UPSERT,
        )
        bulk.insert(conn, "suppressions_like", _COLUMNS, [], _UPSERT)  # nothing to write
    assert _rows(db) == [("a", "one", 1, None), ("b", odd, big, "")]
    with db.session() as conn, conn.transaction():
        bulk.insert(
            conn,
            "suppressions_like",
            _COLUMNS,
            [("a", "uno", 2, "n"), ("c", "c", 0, None)],
            _UPSERT,
        )
    assert _rows(db) == [("a", "uno", 3, "n"), ("b", odd, big, ""), ("c", "c", 0, None)]


def test_do_nothing_keeps_the_first_of_repeated_keys(db: Database) -> None:
    _table(db)
    with db.session() as conn, conn.transaction():
        rows = [("a", "first", 1, None), ("a", "second", 2, None)]
        bulk.insert(conn, "suppressions_like", _COLUMNS, rows, "ON CONFLICT (id) DO NOTHING")
    assert _rows(db) == [("a", "first", 1, None)]


def test_the_statement_of_one_row_names_every_column() -> None:
    assert bulk.insert_sql("t", ("a", "b"), "ON CONFLICT DO NOTHING") == (
        "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING"
    )
