"""``states_for`` binds its contacts in chunks: a person or a page asking for more contact points
than a statement can bind (SQLite's build limit — 32,766 by default, 250,000 in Debian's —,
PostgreSQL's 65,535 parameters) still gets every state, in the one order."""

from __future__ import annotations

import sqlite3

from engagehub.consent.store import states_for
from engagehub.storage.base import Database

PAST_EVERY_LIMIT = 1 + max(
    65_535, sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
)
"""More contacts than either backend binds in one statement (this SQLite build's limit)."""


def test_states_for_more_contacts_than_one_statement_binds(db: Database) -> None:
    stored = [f"p{i:06d}@example.com" for i in range(0, PAST_EVERY_LIMIT, 4_999)]
    asked = [f"p{i:06d}@example.com" for i in range(PAST_EVERY_LIMIT)][::-1]
    with db.session() as conn:
        conn.executemany(
            "INSERT INTO subscription_states (contact, channel, group_name, status, event_time, "
            "seq, source, reason, own_action, updated_at) VALUES (?, ?, '', ?, ?, ?, 'api', NULL, "
            "0, ?)",
            [
                (c, ch, "subscribed" if n % 2 else "unsubscribed", 1_000 + n, n + 1, 2_000)
                for n, c in enumerate(stored)
                for ch in ("sms", "email")
            ],
        )
        states = states_for(conn, asked + asked[:10])
        nothing = states_for(conn, [])
    assert [(s["contact"], s["channel"]) for s in states] == [
        (c, ch) for c in stored for ch in ("email", "sms")
    ]
    assert {s["status"] for s in states[:2]} == {"unsubscribed"}
    assert {s["status"] for s in states[2:4]} == {"subscribed"}
    assert nothing == []
