"""event_index keys: the hash computed in SQL (both backends) is the one readers compute."""

from __future__ import annotations

from engagehub.storage import Database, followers
from engagehub.storage.event_index import FOLLOWER, KEYED_COLUMNS, indexed_upto, key_hash, key_sql

VALUES = ["u1", "alice@example.com", "+15555550100", "ünï-ç0de", "x" * 300]


def test_sql_hash_equals_python_hash(db: Database) -> None:
    with db.session() as conn:
        for kind in KEYED_COLUMNS.values():
            for value in VALUES:
                got = conn.scalar(f"SELECT {key_sql(conn, kind, '?')}", (value,))
                assert int(got) == key_hash(kind, value), (kind, value)


def test_indexed_upto_is_the_slowest_shard(db: Database) -> None:
    with db.session() as conn:
        assert indexed_upto(conn) == 0
        with conn.transaction():
            followers.advance(conn, "processor", f"{FOLLOWER}#0/2", 40)
            followers.advance(conn, "processor", f"{FOLLOWER}#1/2", 25)
        assert indexed_upto(conn) == 25
