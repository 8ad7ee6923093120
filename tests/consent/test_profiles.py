"""Identity resolution: merges across events, conflicts, traits by time, lookups."""

from __future__ import annotations

from typing import Any

from engagehub import registry
from engagehub.model import IncomingEvent
from engagehub.processing import reset, run_until_caught_up
from engagehub.profiles import store
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import logged, make_source


def ev(key: str, t: int, type: str = "track", **kw: Any) -> IncomingEvent:
    return logged(key, t, type=type, **kw)


def test_identities_merge_and_conflicts(db: Database, settings: Settings) -> None:
    src, _ = make_source(db)
    events = [
        ev("1", 1, anonymous_id="anon-1"),
        ev(
            "2",
            2,
            "identify",
            user_id="u1",
            anonymous_id="anon-1",
            properties={"plan": "free", "email": "Ada@Example.com"},
            contact="ada@example.com",
        ),
        ev("3", 3, contact="+14155550100", anonymous_id="anon-2"),
        ev(
            "4",
            4,
            "identify",
            anonymous_id="anon-2",
            contact="ada@example.com",
            properties={"plan": "pro"},
        ),
        ev("5", 0, "identify", user_id="u1", properties={"plan": "ancient"}),
        ev("6", 5, "identify", user_id="u2", contact="ada@example.com"),
        ev("7", 6, "alias", user_id="u1", properties={"previous_id": "old-device"}),
    ]
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, 1, events)])
        processors = registry.processors(settings)
        run_until_caught_up(conn, processors)
        pid = store.find(conn, "u1")
        assert store.find(conn, "ADA@example.com") == pid
        assert store.find(conn, "(415) 555-0100") == pid
        assert store.find(conn, "old-device") == pid
        profile = store.view(conn, pid)
        kinds = {(i["kind"], i["value"]) for i in profile["identities"]}
        assert {
            ("anonymous_id", "anon-1"),
            ("anonymous_id", "anon-2"),
            ("phone", "+14155550100"),
            ("user_id", "u1"),
        } <= kinds
        assert ("user_id", "u2") not in kinds  # a second user id never joins the profile
        assert profile["traits"]["plan"] == "pro"  # newest event time wins, not arrival order
        assert conn.scalar("SELECT COUNT(*) FROM profile_conflicts") >= 1
        first = {k: v for k, v in profile.items() if k != "events"}
        profiles = next(p for p in processors if p.name == "profiles")
        reset(conn, profiles)
        run_until_caught_up(conn, [profiles])
        rebuilt = store.view(conn, store.find(conn, "u1"))
        assert {k: v for k, v in rebuilt.items() if k != "events"} == first


def test_identity_lookups_use_their_indexes(db: Database) -> None:
    """profile_identities is keyed (kind, value) with a value index (0213 undid 0212's WITHOUT
    ROWID (value, kind) table, which cost more at 1M-row imports): lookups by value (profiles)
    use the value index, by kind and value (consent) the key."""
    by_value = "SELECT kind, value, profile_id FROM profile_identities WHERE value IN (?, ?)"
    by_kind = "SELECT profile_id FROM profile_identities WHERE kind = ? AND value = ?"
    with db.session() as conn:
        conn.execute(
            "INSERT INTO profile_identities (kind, value, profile_id, first_seen) "
            "VALUES ('email', 'a@example.com', 'p_1', 1), ('user_id', 'a@example.com', 'p_2', 1) "
            "ON CONFLICT (kind, value) DO UPDATE SET profile_id = excluded.profile_id"
        )
        if conn.dialect == "sqlite":
            plans = [
                " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
                for sql, args in ((by_value, ("a", "b")), (by_kind, ("email", "a")))
            ]
            assert "profile_identities_value (value=?)" in plans[0], plans
            assert "(kind=? AND value=?)" in plans[1], plans
            sql = conn.scalar("SELECT sql FROM sqlite_master WHERE name = 'profile_identities'")
            assert "WITHOUT ROWID" not in str(sql)
        else:
            conn.execute("SET enable_seqscan = off")  # a two-row table: which index, if any
            plans = [
                " ".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, args))
                for sql, args in ((by_value, ("a", "b")), (by_kind, ("email", "a")))
            ]
            conn.execute("RESET enable_seqscan")
            assert "profile_identities_value" in plans[0], plans
            assert "profile_identities_pkey" in plans[1], plans
        found = conn.all("SELECT kind, profile_id FROM profile_identities ORDER BY kind")
        assert found == [
            {"kind": "email", "profile_id": "p_1"},
            {"kind": "user_id", "profile_id": "p_2"},
        ]
