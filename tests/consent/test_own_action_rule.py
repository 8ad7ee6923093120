"""One own-action rule: the Python form (API, CSV, processor) and its SQL twin agree."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from engagehub.consent.model import (
    OWN_ACTIONS,
    PENDING,
    PROTECTED,
    Change,
    refused_sql,
    resubscribe_refused,
)

STATE_STATUSES = ("subscribed", "unsubscribed", "did_not_subscribe", PENDING)
CHANGE_STATUSES = ("subscribed", "unsubscribed", "did_not_subscribe", PENDING)
REASONS = ("csv", "api", "link", "keyword", "hard_bounce", "double_opt_in")


def test_a_bulk_resubscribe_cannot_undo_an_own_unsubscribe() -> None:
    own = {"status": "unsubscribed", "own_action": True}
    assert resubscribe_refused(own, Change("a@x.io", "email", "subscribed", reason="csv"))
    assert resubscribe_refused(own, Change("a@x.io", "email", PENDING, reason="api"))
    # unless the call says so, or the person does it themselves
    allowed = Change("a@x.io", "email", "subscribed", reason="csv", allow_resubscribe=True)
    assert not resubscribe_refused(own, allowed)
    assert not resubscribe_refused(own, Change("a@x.io", "email", "subscribed", reason="link"))
    # an operator's unsubscribe, or no state at all, protects nothing
    assert not resubscribe_refused(
        {"status": "unsubscribed", "own_action": False}, Change("a@x.io", "email", "subscribed")
    )
    assert not resubscribe_refused(None, Change("a@x.io", "email", "subscribed"))
    assert "hard_bounce" in PROTECTED
    assert "hard_bounce" not in OWN_ACTIONS


@pytest.mark.parametrize("allow", [False, True])
def test_the_sql_twin_decides_like_the_function(allow: bool) -> None:
    db = sqlite3.connect(":memory:")
    cases = list(itertools.product(STATE_STATUSES, (0, 1), CHANGE_STATUSES, REASONS))
    for state_status, own, change_status, reason in cases:
        change = Change("a@x.io", "email", change_status, reason=reason, allow_resubscribe=allow)
        expected = resubscribe_refused({"status": state_status, "own_action": own}, change)
        overrides = int(allow or reason in OWN_ACTIONS)
        (got,) = db.execute(
            f"SELECT {refused_sql('s', 'c')} FROM (SELECT ? AS status, ? AS own_action) s, "
            "(SELECT ? AS status) c",
            (overrides, state_status, own, change_status),  # the rule's ? comes first
        ).fetchone()
        assert bool(got) is expected, (state_status, own, change_status, reason, allow)
