"""CSV imports as chunk records: the set-based path gives exactly the Python state machine's
states and history (protection, late imports, repeated rows), on both backends."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from typing import Any

import orjson

from engagehub import registry
from engagehub.consent import batches, store
from engagehub.consent.apply import Context
from engagehub.consent.csv_import import CsvImport, run_import
from engagehub.consent.model import Change
from engagehub.consent.processor import ConsentProcessor
from engagehub.model import IncomingEvent, StoredEvent
from engagehub.processing import reset, run_until_caught_up
from engagehub.profiles import imports
from engagehub.profiles.processor import ProfileProcessor, identities_of
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from tests.conftest import make_source

T0 = 1_772_445_600_000
STATES = (
    "SELECT contact, channel, group_name, status, event_time, seq, source, reason, own_action "
    "FROM subscription_states ORDER BY contact, channel, group_name"
)
HISTORY = (
    "SELECT contact, channel, group_name, status, previous_status, event_time, seq, source, "
    "reason, outcome, event_id FROM subscription_history ORDER BY seq, contact, channel, "
    "group_name"
)
FIRST = (
    "user_id,email,phone,email_subscription_status,sms_subscription_status,"
    "email_group:newsletter,plan\n"
    "u1,ada@example.com,,unsubscribed,,,pro\n"
    "u2,bob@example.com,,subscribed,,,free\n"
    "u3,,+14155550100,,subscribed,,\n"
    "u4,carol@example.com,,subscribed,,,\n"
    "u5,dave@example.com,+14155550101,subscribed,unsubscribed,subscribed,team\n"
    "u6,dave@example.com,,subscribed,,,\n"  # the same status again: not a conflict
    "u7,eve@example.com,,,,unsubscribed,\n"
)
SECOND = "email,email_subscription_status\nbob@example.com,subscribed\nnew@example.com,subscribed\n"


class PythonPathConsent(ConsentProcessor):
    """The same processor with every import record sent through the per-change state machine."""

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        self._builtin = store.builtin_source_id(conn)
        ctx = Context(self._builtin, {}, self.changes_at)
        self._flush(conn, [(ev, c) for ev in events for c in self.changes_at(conn, ev)], ctx)


def vendor(key: str, event: str, t: int, **props: Any) -> IncomingEvent:
    contact = props.get("email") or props.get("phone")
    raw = orjson.dumps(props).decode()
    return IncomingEvent(
        key, t, raw, event=event, vendor_event=event, contact=contact, properties=props
    )


class Errors:
    """An error sink that keeps the rejected rows."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def start(self, header: list[str]) -> None:
        del header

    def add(self, error: Any) -> None:
        self.rows.append(error)


def import_text(conn: Connection, text: str, t: int, allow: bool = False) -> None:
    """The CLI's import path, the processor's refusals only, three valid rows per record."""
    job = CsvImport(hashlib.sha256(text.encode()).hexdigest(), t, "US", allow)
    builtin = store.builtin_source_id(conn)
    errors = Errors()
    run_import(
        io.BytesIO(text.encode()),
        job,
        lambda changes: set(),
        lambda item: batches.append(conn, builtin, item, t),
        errors,
        chunk=3,
    )
    job.close()
    assert not errors.rows, errors.rows


def snapshot(conn: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        [tuple(r) for r in conn.execute(STATES).fetchall()],
        [tuple(r) for r in conn.execute(HISTORY).fetchall()],
    )


def test_set_based_records_equal_the_python_state_machine(db: Database, settings: Settings) -> None:
    sg, _ = make_source(db, "sg", "sendgrid")
    tw, _ = make_source(db, "tw", "twilio")
    processors = registry.processors(settings)
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        log.append(
            conn,
            [
                log.Batch(
                    sg.id, T0, [vendor("u", "Email Unsubscribed", T0, email="bob@example.com")]
                ),
                log.Batch(
                    tw.id,
                    T0,
                    [
                        vendor(
                            "k",
                            "SMS Received",
                            T0,
                            phone="+14155550100",
                            keyword_action="unsubscribe",
                        )
                    ],
                ),
                log.Batch(
                    builtin,
                    T0,
                    [
                        store.change_event(
                            Change("ada@example.com", "email", "subscribed", "", "api"), T0, "a1"
                        ),
                        store.change_event(
                            Change("carol@example.com", "email", "unsubscribed", "", "api"),
                            T0 + 10_000_000,  # newer than the import: the import is superseded
                            "c1",
                        ),
                    ],
                ),
            ],
        )
        run_until_caught_up(conn, processors)
        import_text(conn, FIRST, T0 + 1_000)
        run_until_caught_up(conn, processors)
        import_text(conn, SECOND, T0 + 2_000, allow=True)
        run_until_caught_up(conn, processors)
        incremental = snapshot(conn)

        outcomes = {(r[0], r[1], r[2], r[6]): r[9] for r in incremental[1] if r[8] == "csv"}
        by_contact: dict[str, list[str]] = {}
        for (contact, _channel, _group, _seq), outcome in sorted(
            outcomes.items(), key=lambda i: i[0][3]
        ):
            by_contact.setdefault(contact, []).append(outcome)
        assert by_contact["bob@example.com"] == ["refused", "applied"]  # own unsubscribe; allow
        assert by_contact["+14155550100"] == ["refused"]  # STOP keyword sticks
        assert by_contact["carol@example.com"] == ["superseded"]  # an older import arrives late
        assert by_contact["ada@example.com"] == ["applied"]
        assert store.status(conn, "ada@example.com", "email") == "unsubscribed"
        assert store.status(conn, "bob@example.com", "email") == "subscribed"
        assert store.status(conn, "carol@example.com", "email") == "unsubscribed"
        assert store.status(conn, "eve@example.com", "email", "newsletter") == "unsubscribed"
        assert store.status(conn, "+14155550101", "sms") == "unsubscribed"
        dave = store.history(conn, "dave@example.com")  # u6 repeats u5's email status
        assert sorted((h["group"] or "", h["outcome"]) for h in dave) == [
            ("", "applied"),
            ("newsletter", "applied"),
        ]

        consent = next(p for p in processors if p.name == "consent")
        reset(conn, consent)
        run_until_caught_up(conn, [consent])
        assert snapshot(conn) == incremental  # a rebuild gives the same

        python_path = PythonPathConsent(settings)
        reset(conn, python_path)
        run_until_caught_up(conn, [python_path])
        assert snapshot(conn) == incremental  # ... and so does the per-change state machine


def test_reimport_stores_nothing_and_records_are_small(db: Database, settings: Settings) -> None:
    with db.session() as conn:
        import_text(conn, FIRST, T0)
        head = log.head(conn)
        import_text(conn, FIRST, T0)
        assert log.head(conn) == head  # same file, same chunk keys: nothing new
        records = log.read_range(conn, 0, head)
        assert [r.event for r in records] == [batches.IMPORTED] * 3  # 7 rows in chunks of 3
        assert [r.properties["rows"] for r in records] == [3, 3, 1]
        assert len(records[0].raw) < 300  # the rows live in import_batches, not in the log
        run_until_caught_up(conn, registry.processors(settings))
        assert conn.scalar("SELECT COUNT(*) FROM profiles") == 7 - 1  # u6 shares dave's email


PROFILES = (
    "SELECT id, merged_into, traits, trait_times, identities, first_seen, last_seen FROM profiles "
    "ORDER BY id"
)
IDENTITIES = "SELECT kind, value, profile_id FROM profile_identities ORDER BY kind, value"


class LoopOnlyProfiles(ProfileProcessor):
    """Profiles with every import row through the per-event linking loop."""

    fast_imports = False


def test_fresh_import_rows_become_the_profiles_the_loop_makes(
    db: Database, settings: Settings
) -> None:
    web, _ = make_source(db, "web", "segment")
    processors = registry.processors(settings)
    known = IncomingEvent(
        "i1",
        T0,
        "{}",
        type="identify",
        user_id="u1",
        contact="ada@example.com",
        properties={"plan": "old"},
    )
    with db.session() as conn:
        log.append(conn, [log.Batch(web.id, T0, [known])])
        run_until_caught_up(conn, processors)
        import_text(conn, FIRST, T0 + 1_000)  # u1 is known, dave is in two rows, the rest new
        run_until_caught_up(conn, processors)
        fast = (
            [tuple(r) for r in conn.execute(PROFILES)],
            [tuple(r) for r in conn.execute(IDENTITIES)],
        )
        assert len(fast[0]) == 6
        loop = LoopOnlyProfiles(settings.default_region)
        reset(conn, loop)
        run_until_caught_up(conn, [loop])
        assert (
            [tuple(r) for r in conn.execute(PROFILES)],
            [tuple(r) for r in conn.execute(IDENTITIES)],
        ) == fast


ODD_TRAITS = (
    "user_id,email,phone,id:crm,braze_id,identifiers,plan,email_subscription_status\n"
    "v1,v1@example.com,+14155550200,c1,b1,odd,pro,subscribed\n"
    "v2,,+14155550201,,,,,\n"
    "v3,v3@example.com,,c3,,x,,unsubscribed\n"
    ",v4@example.com,,,b4,,team,subscribed\n"
    "v5,v5@example.com,+14155550205,,,,free,\n"
)


def test_fresh_rows_with_custom_ids_and_odd_traits_equal_the_loop(
    db: Database, settings: Settings
) -> None:
    """Custom identifiers, a braze_id trait, an ``identifiers`` trait column and rows with
    different trait sets (their trait times) come out of the fast path as the loop makes them."""
    processors = registry.processors(settings)
    with db.session() as conn:
        import_text(conn, ODD_TRAITS, T0 + 5_000)
        run_until_caught_up(conn, processors)
        fast = (
            [tuple(r) for r in conn.execute(PROFILES)],
            [tuple(r) for r in conn.execute(IDENTITIES)],
        )
        assert len(fast[0]) == 5
        assert ("crm", "c1") in {(k, v) for k, v, _ in fast[1]}
        assert ("braze_id", "b4") in {(k, v) for k, v, _ in fast[1]}
        loop = LoopOnlyProfiles(settings.default_region)
        reset(conn, loop)
        run_until_caught_up(conn, [loop])
        assert (
            [tuple(r) for r in conn.execute(PROFILES)],
            [tuple(r) for r in conn.execute(IDENTITIES)],
        ) == fast


def test_row_identities_are_those_of_the_rows_identify_call() -> None:
    record = log.from_row(
        (9, "e", 1, "csv:k:rows:2-9", "track", batches.IMPORTED, batches.IMPORTED, None, None,
         None, None, None, None, T0, T0, "{}", "")
    )  # fmt: skip
    rows: list[batches.Row] = [
        (2, {"user_id": "u1", "email": "a@example.com", "phone": "+14155550100"}, {"x": "1"}, []),
        (3, {"phone": "+14155550101"}, {}, []),
        (4, {"email": "+tag@example.com", "phone": "+14155550102"}, {}, []),
        (5, {"anonymous_id": "an", "id:crm": "c1", "id:shop": ""}, {"braze_id": "b1"}, []),
        (6, {"email": "b@example.com"}, {"identifiers": "odd", "braze_id": ""}, []),
    ]
    for row in rows:
        expected = identities_of(batches.identify_event(record, row), "US")
        assert imports.row_identities(row[1], row[2]) == expected, row
    assert imports.row_identities({"email": "c@example.com", "phone": "4155550100"}, {}) is None


def test_erasure_drops_a_persons_import_rows(db: Database, settings: Settings) -> None:
    with db.session() as conn:
        import_text(conn, FIRST, T0)
        with conn.transaction():
            assert batches.erase(conn, {"dave@example.com"}) == 2  # u5 and u6
        run_until_caught_up(conn, registry.processors(settings))
        assert store.status(conn, "dave@example.com", "email") == "no_status"
        assert store.status(conn, "+14155550101", "sms") == "no_status"  # u5's phone went too
        assert store.status(conn, "ada@example.com", "email") == "unsubscribed"
