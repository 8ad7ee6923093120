"""The one IN (?, ...) helper: slices every backend binds, placeholders that match them."""

from __future__ import annotations

import sqlite3

from engagehub.storage.sqlin import CHUNK, chunks, marks, where_in


def test_chunks_cover_every_value_once_in_order() -> None:
    values = list(range(2 * CHUNK + 7))
    parts = list(chunks(values))
    assert [len(p) for p in parts] == [CHUNK, CHUNK, 7]
    assert [v for p in parts for v in p] == values
    assert list(chunks([])) == []
    assert list(chunks("abcde", size=2)) == ["ab", "cd", "e"]


def test_placeholders_match_the_values() -> None:
    assert marks(["a", "b", "c"]) == "?, ?, ?"
    assert marks(2) == "?, ?"
    assert where_in("contact", ("x",)) == "contact IN (?)"


def test_a_long_list_reads_every_row_through_the_chunks() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(5000)])
    wanted = list(range(0, 5000, 2))
    found = []
    for part in chunks(wanted):
        sql = f"SELECT k FROM t WHERE {where_in('k', part)} AND v <> ?"
        found += [k for (k,) in db.execute(sql, [*part, "v0"])]
    assert sorted(found) == wanted[1:]
