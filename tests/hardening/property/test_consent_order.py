"""Consent ordering on both backends: the same changes, arriving in any order and with
duplicates, end in the same subscription state as applying them in event-time order (last
writer wins, except that a person's own unsubscribe blocks a later bulk subscribe)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagehub import registry
from engagehub.consent import store
from engagehub.consent.model import OWN_ACTIONS, PROTECTED, STATUSES, Change
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log

T0 = 1_772_445_600_000
_contacts = itertools.count()
# Bulk changes (operators, imports, APIs), the person's own actions, and suppressions.
REASONS = [None, "csv_import", "api", "link", "keyword", "user_request", "hard_bounce"]

changes = st.lists(
    st.tuples(
        st.sampled_from(STATUSES),
        st.integers(0, 10_000),
        st.sampled_from(REASONS),
        st.booleans(),  # allow_resubscribe
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda c: c[1],  # distinct event times; equal times are ordered by log position
)


def arrive(db: Database, settings: Settings, contact: str, sequence: list[tuple[int, Any]]) -> None:
    """Append each change as its own request and let the processors run after each one."""
    processors = registry.processors(settings)
    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        for index, (status, offset, reason, allow) in sequence:
            change = Change(contact, "email", status, "", reason, allow)
            event = store.change_event(change, T0 + offset, f"{contact}:{index}")
            log.append(conn, [log.Batch(builtin, T0, [event])])
            run_until_caught_up(conn, processors)


def final_state(db: Database, contact: str) -> tuple[str, Any]:
    with db.session() as conn:
        row = conn.one(
            "SELECT status, event_time FROM subscription_states WHERE contact = ?", (contact,)
        )
    assert row is not None
    return row["status"], row["event_time"]


def test_any_arrival_order_with_duplicates_ends_in_the_same_state(
    db: Database, settings: Settings
) -> None:
    @settings_for_db
    @given(data=st.data(), items=changes)
    def check(data: st.DataObject, items: list[tuple[str, int, str | None, bool]]) -> None:
        indexed = list(enumerate(items))
        shuffled = data.draw(st.permutations(indexed))
        repeats = data.draw(st.lists(st.sampled_from(indexed), max_size=3))
        n = next(_contacts)
        in_order, any_order = f"a{n}@example.com", f"b{n}@example.com"
        arrive(db, settings, in_order, sorted(indexed, key=lambda i: i[1][1]))
        arrive(db, settings, any_order, [*shuffled, *repeats])
        assert final_state(db, in_order) == expected(items)
        assert final_state(db, any_order) == expected(items)

    check()


def expected(items: list[tuple[str, int, str | None, bool]]) -> tuple[str, int]:
    """The documented rules, applied in event-time order (a model independent of the code)."""
    state: tuple[str, int, bool] | None = None
    for status, offset, reason, allow in sorted(items, key=lambda c: c[1]):
        protected = state is not None and state[0] == "unsubscribed" and state[2]
        if protected and status == "subscribed" and reason not in OWN_ACTIONS and not allow:
            continue  # refused: a bulk subscribe does not undo the person's own unsubscribe
        state = (status, offset, reason in PROTECTED)
    assert state is not None
    return state[0], T0 + state[1]


settings_for_db = settings(
    max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def test_late_own_unsubscribe_still_blocks_a_newer_bulk_subscribe(
    db: Database, settings: Settings
) -> None:
    own = ("unsubscribed", 0, "link", False)
    bulk = ("subscribed", 1_000, "csv_import", False)
    arrive(db, settings, "in-order@example.com", [(0, own), (1, bulk)])
    arrive(db, settings, "late@example.com", [(1, bulk), (0, own)])
    assert final_state(db, "in-order@example.com")[0] == "unsubscribed"
    assert final_state(db, "late@example.com")[0] == "unsubscribed"
