"""Migration 0214 lists the identities of existing profiles in their rows (both backends), and
the processors go on from the migrated state as if it had been built by this code."""

from __future__ import annotations

import orjson

from engagehub import registry
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.profiles import members, store
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.storage.migrate import load_migrations, split_statements
from tests.conftest import make_source

OLD = [  # (kind, value, profile id) as sessions before 0214 stored them, in no order
    ("user_id", "u1", "p_a"),
    ("email", "ada@example.com", "p_a"),
    ("anonymous_id", "ä-1", "p_a"),
    ("anonymous_id", "Z-2", "p_a"),
    ("phone", "+14155550100", "p_c"),
    ("user_id", "u2", "p_d"),
]


def test_0214_lists_identities_of_existing_profiles(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    db = open_database(database_url, settings)
    try:
        with db.session() as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at BIGINT NOT NULL)"
            )
            for m in load_migrations(conn.dialect):
                if m.version < 214:
                    for statement in split_statements(m.sql, conn.dialect):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, 0)", [m.version, m.name]
                    )
            for pid, merged in (("p_a", None), ("p_b", "p_a"), ("p_c", None), ("p_d", None)):
                conn.execute(
                    "INSERT INTO profiles (id, merged_into, traits, trait_times, first_seen, "
                    "last_seen, updated_at) VALUES (?, ?, '{}', '{}', 1, 1, 1)",
                    (pid, merged),
                )
            conn.executemany(
                "INSERT INTO profile_identities (kind, value, profile_id, first_seen) "
                "VALUES (?, ?, ?, 1)",
                OLD,
            )
            assert 214 in [m.version for m in migrate(conn)]
            expected = {
                pid: sorted((k, v) for k, v, p in OLD if p == pid) for pid in ("p_a", "p_c", "p_d")
            }
            assert members.of(conn, ["p_a", "p_b", "p_c", "p_d"]) == {**expected, "p_b": []}
            assert expected["p_a"][0] == ("anonymous_id", "Z-2")  # code-point order on both
            for pid, text in conn.execute("SELECT id, identities FROM profiles"):
                assert orjson.loads(text) == [list(i) for i in expected.get(pid, [])]
            view = store.view(conn, "p_a", events=0)
            assert view["merged_ids"] == ["p_b"]
            assert [(i["kind"], i["value"]) for i in view["identities"]] == expected["p_a"]

        # the processors go on from there: u1 gains an email, then meets p_c's phone (merge)
        src, _ = make_source(db)
        events = [
            IncomingEvent("e1", 10, "{}", type="track", user_id="u1", contact="new@example.com"),
            IncomingEvent("e2", 11, "{}", type="track", user_id="u1", contact="+14155550100"),
        ]
        with db.session() as conn:
            log.append(conn, [log.Batch(src.id, 10, events)])
            run_until_caught_up(conn, registry.processors(settings))
            assert store.find(conn, "+14155550100") == "p_a"
            assert members.of(conn, ["p_a", "p_c"]) == {
                "p_a": sorted([*expected["p_a"], *expected["p_c"], ("email", "new@example.com")]),
                "p_c": [],
            }
            owners = conn.all("SELECT DISTINCT profile_id FROM profile_identities ORDER BY 1")
            assert [r["profile_id"] for r in owners] == ["p_a", "p_d"]
    finally:
        db.close()
