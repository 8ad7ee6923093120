"""Erasure on both backends: the person leaves the log and every derived table, others' numbers
stay exactly what they would be had the person never existed, and the files keep no copy."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import orjson

from engagehub import registry
from engagehub.model import IncomingEvent
from engagehub.privacy import erase, suppress
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import Database, migrate, open_database
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from tests.analytics.helpers import T0, H, ev
from tests.conftest import make_source

ALICE = ("u-alice-4711", "alice.erased@example.com", "anon-alice-93")
BOB = ("u-bob-0815", "bob.kept@example.com", "anon-bob-11")


def story(who: tuple[str, str, str], message: str) -> list[IncomingEvent]:
    """A person's identify, a campaign email's lifecycle, a goal, a custom event, an unsubscribe."""
    user, email, anon = who
    events = [
        ev(f"{user}-sent", "Email Sent", T0, message, "spring", user, email),
        ev(f"{user}-dlv", "Email Delivered", T0 + 60_000, message, "spring", user, email),
        ev(f"{user}-open", "Email Opened", T0 + H, message, "spring", user, email),
        ev(
            f"{user}-click",
            "Email Link Clicked",
            T0 + H,
            message,
            "spring",
            user,
            email,
            url="https://shop.test/spring",
        ),
        ev(f"{user}-order", "Order Completed", T0 + 2 * H, None, None, user, None, total=30),
        ev(f"{user}-custom", "Wishlist Shared", T0 + 2 * H, None, None, user, None),
        ev(f"{user}-unsub", "Email Unsubscribed", T0 + 3 * H, message, "spring", user, email),
        ev(
            f"{user}-bounce",
            "Email Bounced",
            T0 + 3 * H,
            message,
            "spring",
            user,
            email,
            bounce_type="hard",
            reason="550 5.1.1 user unknown",
        ),
        # provider event carrying only the message id (no person identifier at all)
        ev(f"{user}-open2", "Email Opened", T0 + 4 * H, message, "spring", None, None),
    ]
    identify = IncomingEvent(
        dedup_key=f"{user}-identify",
        event_time=T0 - H,
        raw=orjson.dumps({"type": "identify", "traits": {"email": email}}).decode(),
        type="identify",
        user_id=user,
        anonymous_id=anon,
        contact=email,
        properties={"email": email, "name": user.upper()},
    )
    return [identify, *events]


def fill(db: Database, settings: Settings, people: list[tuple[tuple[str, str, str], str]]) -> None:
    source, _ = make_source(db)
    with db.session() as conn:
        conn.execute(
            "INSERT INTO analytics_goals (campaign_id, event, where_expr, within_ms, created_at) "
            "VALUES ('spring', 'Order Completed', NULL, ?, 0)",
            (72 * H,),
        )
        for who, message in people:
            log.append(conn, [log.Batch(source.id, T0, story(who, message))])
        run_until_caught_up(conn, registry.processors(settings))


AGGREGATES = (
    "SELECT * FROM analytics_rollups ORDER BY 1, 2, 3, 4, 5, 6",
    "SELECT * FROM analytics_rollup_details ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
    "SELECT * FROM analytics_message_hours ORDER BY 1, 2, 3",
    "SELECT vendor_event, count FROM unmapped_events ORDER BY 1",
    "SELECT message_id, status, converted_at FROM analytics_messages ORDER BY 1",
    "SELECT kind, value FROM profile_identities ORDER BY 1, 2",
    "SELECT contact, channel, status FROM subscription_states ORDER BY 1, 2",
    "SELECT contact, status FROM subscription_history ORDER BY 1, 2",
    "SELECT contact, channel, reason FROM suppressions ORDER BY 1, 2",
    "SELECT contact, channel, kind FROM suppression_signals ORDER BY 1, 2, 3",
)


def state(conn: Connection) -> list[list[tuple[Any, ...]]]:
    return [[tuple(r) for r in conn.execute(sql).fetchall()] for sql in AGGREGATES]


def other_db(settings: Settings, url: str) -> Database:
    database = open_database(url, settings)
    with database.session() as conn:
        migrate(conn)
    return database


def test_erasure_leaves_the_state_of_a_world_without_the_person(
    db: Database, settings: Settings, second_database_url: str
) -> None:
    fill(db, settings, [(ALICE, "m-alice"), (BOB, "m-bob")])
    reference = other_db(settings, second_database_url)
    fill(reference, settings, [(BOB, "m-bob")])
    with db.session() as conn:
        before = state(conn)
        assert all(before), "every compared table has rows before the erasure"
        total = int(conn.scalar("SELECT COUNT(*) FROM events"))
        assert any("alice" in str(row) for table in before for row in table)
        job = erase.request(conn, "ALICE.Erased@example.com", "GDPR art. 17", "test", "US")
        assert job["state"] == "pending"
        assert job["step"] == "requested"
    done = erase.run(db, job["id"], settings)
    assert done["state"] == "done"
    assert done["step"] == "wiped"
    with db.session() as conn, reference.session() as ref:
        kept = int(ref.scalar("SELECT COUNT(*) FROM events"))
        assert done["counts"]["events"] == total - kept >= 10
        assert done["counts"]["messages"] == 1
        assert state(conn) == state(ref)
        seqs = [int(r[0]) for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
        assert len(seqs) == kept
        assert seqs != list(range(1, kept + 1))
        for table in ("profiles", "event_index", "analytics_goal_events"):
            assert conn.scalar(f"SELECT COUNT(*) FROM {table}") == ref.scalar(
                f"SELECT COUNT(*) FROM {table}"
            ), table
        # followers go on past the gaps: new events are processed as usual
        source = int(conn.scalar("SELECT id FROM sources WHERE kind = 'segment'"))
        log.append(conn, [log.Batch(source, T0, [ev("late", "Email Opened", T0 + 5 * H, "m-bob",
                                                      "spring", BOB[0], BOB[1])])])  # fmt: skip
        run_until_caught_up(conn, registry.processors(settings))
        assert conn.scalar("SELECT status FROM analytics_messages WHERE message_id = 'm-bob'")
        # the job and its suppression keys never name the person
        rows = conn.all("SELECT * FROM privacy_erasures") + conn.all(
            "SELECT * FROM privacy_suppressions"
        )
        text = orjson.dumps(rows).decode()
        for value in ALICE:
            assert value not in text
        assert len(conn.all("SELECT * FROM privacy_suppressions")) == 3
    reference.close()


def test_suppressed_after_erasure_until_a_fresh_own_opt_in(
    db: Database, settings: Settings
) -> None:
    fill(db, settings, [(ALICE, "m-alice")])
    with db.session() as conn:
        job = erase.request(conn, ALICE[0], None, "test", "US")
    erase.run(db, job["id"], settings)
    source = make_source(db, "web2")[0].id
    before = suppress.SUPPRESSED._value.get()
    with db.session() as conn:
        again = story(ALICE, "m-alice-2")[:-1]  # (the last one carries no identifier at all)
        result = log.append(conn, [log.Batch(source, T0, again)])[0]
        assert (result.inserted, result.duplicates) == (0, 0)
        assert conn.scalar("SELECT COUNT(*) FROM events") == 0
        assert suppress.SUPPRESSED._value.get() == before + len(again)
        assert suppress.blocked(conn, [ALICE[1], BOB[1]]) == {ALICE[1]}
        # an operator's bulk subscribe is not the person's own action: still dropped
        bulk = IncomingEvent(
            "bulk-sub", T0, "{}", "track", "Channel Subscription Updated",
            "Channel Subscription Updated", "subscription", None, None, ALICE[1],
            properties={"channel": "email", "subscription_status": "subscribed", "reason": "api"},
        )  # fmt: skip
        assert log.append(conn, [log.Batch(source, T0, [bulk])])[0].inserted == 0
        # the person subscribes again themselves (a preference page): stored, suppression lifted
        own = IncomingEvent(
            "own-sub", T0, "{}", "track", "Channel Subscription Updated",
            "Channel Subscription Updated", "subscription", None, None, ALICE[1],
            properties={"channel": "email", "subscription_status": "subscribed",
                        "reason": "preferences"},
        )  # fmt: skip
        assert log.append(conn, [log.Batch(source, T0, [own])])[0].inserted == 1
        assert suppress.blocked(conn, [ALICE[1]]) == set()
        run_until_caught_up(conn, registry.processors(settings))
        assert (
            conn.scalar("SELECT status FROM subscription_states WHERE contact = ?", (ALICE[1],))
            == "subscribed"
        )
        # the user id stays suppressed
        assert (
            log.append(
                conn,
                [log.Batch(source, T0, [ev("x", "Order Completed", T0, None, None, ALICE[0])])],
            )[0].inserted
            == 0
        )


def test_unknown_key_is_suppressed_too(db: Database, settings: Settings) -> None:
    with db.session() as conn:
        job = erase.request(conn, "nobody@example.com", None, "test", "US")
    done = erase.run(db, job["id"], settings)
    assert done["state"] == "done"
    assert done["counts"]["events"] == 0
    source = make_source(db)[0].id
    with db.session() as conn:
        late = ev("n1", "Email Opened", T0, "m9", "spring", None, "nobody@example.com")
        assert log.append(conn, [log.Batch(source, T0, [late])])[0].inserted == 0


def test_cli_export_is_one_complete_document(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    from tests.cli.test_cli import run

    fill(db, settings, [(ALICE, "m-alice"), (BOB, "m-bob")])
    out = tmp_path / "alice.json"
    run(database_url, "people", "export", ALICE[2], "--out", str(out))
    doc = orjson.loads(out.read_bytes())
    with db.session() as conn:
        mine = int(
            conn.scalar(
                "SELECT COUNT(*) FROM events WHERE user_id = ? OR contact = ? "
                "OR message_id = 'm-alice'",
                (ALICE[0], ALICE[1]),
            )
        )
    assert doc["event_count"] == len(doc["events"]) == mine
    assert {m["message_id"] for m in doc["messages"]} == {"m-alice"}
    assert doc["messages"][0]["lifecycle"]["status"]
    assert BOB[1] not in out.read_text()
    stdout = run(database_url, "people", "export", ALICE[1]).stdout
    assert orjson.loads(stdout)["event_count"] == mine
    archive = tmp_path / "alice.zip"
    run(database_url, "people", "export", ALICE[1], "--zip", "--out", str(archive))
    with zipfile.ZipFile(archive) as z:
        assert orjson.loads(z.read("person-export.json"))["event_count"] == mine
    missing = run(database_url, "people", "export", "nobody@x.test", "--zip", ok=False)
    assert missing.returncode != 0
    assert not (tmp_path / "nobody.zip").exists()


def test_erasure_removes_the_person_from_stored_csv_import_rows(
    db: Database, settings: Settings
) -> None:
    from engagehub.consent import batches
    from tests.consent.test_import_records import import_text

    text = (
        "user_id,email,email_subscription_status\r\n"
        "u-erin,erin.erased@example.com,subscribed\r\n"
        "u-kept,kept@example.com,subscribed\r\n"
    )
    with db.session() as conn:
        import_text(conn, text, T0)
        run_until_caught_up(conn, registry.processors(settings))
        job = erase.request(conn, "erin.erased@example.com", "GDPR art. 17", "test", "US")
    assert erase.run(db, job["id"], settings)["state"] == "done"
    with db.session() as conn:
        assert conn.scalar("SELECT COUNT(*) FROM import_batches") == 1
        assert batches.erase(conn, {"erin.erased@example.com"}) == 0  # nothing of her is left
        assert batches.erase(conn, {"kept@example.com"}) == 1  # the other person's row stays
