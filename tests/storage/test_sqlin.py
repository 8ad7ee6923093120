"""The one IN (?, ...) helper: slices every backend binds, placeholders that match them."""

from __future__ import annotations

import sqlite3

from engagehub.storage import Database
from engagehub.storage.sqlin import CHUNK, chunks, marks, newest_in, where_in


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


def test_the_newest_rows_of_several_keys_come_merged_and_cut(db: Database) -> None:
    rows = [(f"c{i % 1200}", (i * 7919) % 500, i) for i in range(3000)]
    with db.session() as conn:
        conn.execute("CREATE TABLE hist (contact TEXT, at BIGINT, seq BIGINT)")
        conn.executemany("INSERT INTO hist VALUES (?, ?, ?)", rows)
        for wanted in (["c3", "c1", "c3", "c2"], [f"c{i}" for i in range(1100)], "c5"):
            keys = {wanted} if isinstance(wanted, str) else set(wanted)
            expected = sorted(
                ({"contact": c, "at": a, "seq": s} for c, a, s in rows if c in keys),
                key=lambda r: (r["at"], r["seq"]),
                reverse=True,
            )[:40]
            got = newest_in(
                conn, "SELECT contact, at, seq FROM hist", "contact", wanted, ("at", "seq"), 40
            )
            assert got == expected, wanted
