"""A profile's identities listed in its row (``profiles.identities``, migration 0214) agree
with ``profile_identities`` after merges, conflicts, imports, re-imports and erasures, and every
lookup by profile answers what the by-profile query of ``profile_identities`` answered."""

from __future__ import annotations

import random
from typing import Any

from engagehub import registry
from engagehub.consent import persons
from engagehub.messaging import audiences
from engagehub.model import IncomingEvent
from engagehub.privacy import erase
from engagehub.privacy import person as people
from engagehub.processing import run_until_caught_up
from engagehub.profiles import members, store
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from tests.conftest import logged, make_source
from tests.consent.test_import_records import T0, import_text

Listing = dict[str, list[tuple[str, str]]]


def by_table(conn: Connection) -> Listing:
    """The reference: what ``WHERE profile_id = ?`` over ``profile_identities`` answers."""
    found: Listing = {}
    for kind, value, pid in conn.execute("SELECT kind, value, profile_id FROM profile_identities"):
        found.setdefault(str(pid), []).append((str(kind), str(value)))
    return {pid: sorted(ids) for pid, ids in found.items()}


def by_rows(conn: Connection) -> Listing:
    """The lists as stored (each must already be sorted: the processor writes them so)."""
    found: Listing = {}
    for pid, text in conn.execute("SELECT id, identities FROM profiles"):
        ids = members.decode(text)
        assert ids == sorted(ids), (pid, text)
        if ids:
            found[str(pid)] = ids
    return found


def assert_consistent(conn: Connection) -> Listing:
    listing = by_table(conn)
    assert by_rows(conn) == listing
    merged = conn.all("SELECT id FROM profiles WHERE merged_into IS NOT NULL")
    assert not {r["id"] for r in merged} & set(listing), "a merged profile lists no identity"
    return listing


def event(key: str, t: int, rnd: random.Random) -> IncomingEvent:
    """An event carrying a random few identities of a small pool (so profiles merge and
    conflict: two user ids meeting through a shared email)."""
    kw: dict[str, Any] = {}
    props: dict[str, Any] = {}
    if rnd.random() < 0.5:
        kw["user_id"] = f"u{rnd.randrange(12)}"
    if rnd.random() < 0.6:
        kw["anonymous_id"] = f"a{rnd.randrange(40)}"
    if rnd.random() < 0.5:
        kw["contact"] = (
            f"p{rnd.randrange(25)}@example.com"
            if rnd.random() < 0.7
            else f"+1415555{rnd.randrange(30):04d}"
        )
    kind = "identify" if rnd.random() < 0.3 else "track"
    if kind == "identify" and rnd.random() < 0.4:
        props["push_token"] = f"tok-{rnd.randrange(15)}"
    if not kw:
        kw["anonymous_id"] = f"a{rnd.randrange(40)}"
    return logged(key, t, props, type=kind, **kw)


def test_listed_identities_follow_merges_imports_and_erasures(
    db: Database, settings: Settings
) -> None:
    src, _ = make_source(db)
    rnd = random.Random(15)
    processors = registry.processors(settings)
    with db.session() as conn:
        for batch in range(6):  # several rounds: profiles written, read back, merged later
            # times out of log order: a new identity often changes neither first nor last seen
            events = [event(f"{batch}-{i}", T0 + rnd.randrange(600), rnd) for i in range(60)]
            log.append(conn, [log.Batch(src.id, T0, events)])
            run_until_caught_up(conn, processors, window=37)
            assert_consistent(conn)
        merged = conn.scalar("SELECT COUNT(*) FROM profiles WHERE merged_into IS NOT NULL")
        assert merged
        assert conn.scalar("SELECT COUNT(*) FROM profile_conflicts")

        # a CSV import links rows to known people (u1, p3@...) and makes fresh ones; again
        # the same file stores nothing; a second file gives known people new identities
        first = (
            "user_id,email,phone,email_subscription_status\n"
            "u1,fresh1@example.com,+14155559001,subscribed\n"
            "u90,p3@example.com,,subscribed\n"
            "u91,new91@example.com,+14155559091,unsubscribed\n"
            "u92,new92@example.com,,subscribed\n"
        )
        import_text(conn, first, T0 + 10_000)
        run_until_caught_up(conn, processors)
        after_import = assert_consistent(conn)
        import_text(conn, first, T0 + 10_000)
        run_until_caught_up(conn, processors)
        assert assert_consistent(conn) == after_import
        import_text(conn, "user_id,phone\nu92,+14155559092\nu2,+14155559002\n", T0 + 20_000)
        run_until_caught_up(conn, processors)
        listing = assert_consistent(conn)
        u92 = store.find(conn, "u92")
        assert listing[u92] == [
            ("email", "new92@example.com"),
            ("phone", "+14155559092"),
            ("user_id", "u92"),
        ]

        # every reader by profile answers what the table answers
        for pid, ids in listing.items():
            view = store.view(conn, pid, events=0)
            assert [(i["kind"], i["value"]) for i in view["identities"]] == ids
            assert people.resolve(conn, pid, "US").identities == ids
            users = [v for k, v in ids if k == "user_id"]
            if users:
                probe = log.read_range(conn, 0, log.head(conn))[0]
                probe.user_id, probe.anonymous_id = users[0], None
                for kind in ("email", "phone", "push_token"):
                    assert persons.contact_points(conn, probe, kind) == [
                        v for k, v in ids if k == kind
                    ]
        for row in conn.all("SELECT id FROM profiles WHERE merged_into IS NOT NULL"):
            assert store.view(conn, row["id"], events=0)["identities"] == []
        users = sorted({v for ids in listing.values() for k, v in ids if k == "user_id"})
        expected = {v for ids in listing.values() if set(ids) & {("user_id", u) for u in users}
                    for k, v in ids if k in ("email", "phone")}  # fmt: skip
        assert audiences.contacts_of_users(conn, users) == expected

    # an erasure removes the person's identities and rows; the others stay listed
    with db.session() as conn:
        victim = store.find(conn, "u1")
        job = erase.request(conn, "u1", None, "test", "US")
    erase.run(db, job["id"], settings)
    with db.session() as conn:
        left = assert_consistent(conn)
        assert victim not in left
        assert {p: ids for p, ids in listing.items() if p != victim} == left


def test_lookups_by_profile_use_no_profile_index(db: Database) -> None:
    """No B-tree is keyed by profile id per identity (0214): the write path's random index."""
    with db.session() as conn:
        if conn.dialect == "sqlite":
            names = {
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE tbl_name = 'profile_identities'"
                )
            }
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    "EXPLAIN QUERY PLAN SELECT id FROM profiles WHERE merged_into IN (?, ?)",
                    ("a", "b"),
                )
            )
            assert "profiles_merged_into" in plan, plan
        else:
            names = {
                str(r[0])
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'profile_identities' "
                    "AND schemaname = current_schema()"
                )
            }
        assert "profile_identities_profile" not in names
        assert "profile_identities_value" in names
