"""A round reads the log by the window's ``seq`` range, whatever a processor's filter says.

On a fresh SQLite database (no statistics) a filter like ``source_id IN (SELECT ...) AND
dedup_key LIKE 'doi:%'`` made the planner walk the ``(source_id, dedup_key)`` index over the
whole source; a round near the head of a big log then cost as much as the source holds.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from engagehub.consent import changes
from engagehub.consent.store import builtin_source_id
from engagehub.messaging.double_opt_in import ConfirmationProcessor
from engagehub.model import IncomingEvent
from engagehub.processing import Window, run_round
from engagehub.profiles import processor as profiles
from engagehub.registry import processors
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage.sqlite import SQLiteConnection
from engagehub.timeutil import now_ms
from tests.conftest import make_source

BUILT_IN_EVENTS = 3_000


def _fill(db: Database) -> tuple[int, int]:
    """A log whose built-in source holds many events, then a few segment ones; (after, head)."""
    src, _ = make_source(db)
    with db.session() as conn:
        own = builtin_source_id(conn)
        mine = [
            IncomingEvent(
                dedup_key=f"consent:{i}",
                event_time=1_000 + i,
                raw="{}",
                event="Subscription Status Changed" if i % 2 else None,
                contact=f"p{i}@example.com",
                user_id=f"u{i}",
            )
            for i in range(BUILT_IN_EVENTS)
        ]
        log.append(conn, [log.Batch(own, now_ms(), mine)])
        after = log.head(conn)
        theirs = [
            IncomingEvent(
                dedup_key=f"m{i}",
                event_time=9_000 + i,
                raw="{}",
                event="Email Delivered",
                contact=f"p{i}@example.com",
                message_id=f"msg{i}",
            )
            for i in range(20)
        ]
        log.append(conn, [log.Batch(src.id, now_ms(), theirs)])
        if conn.dialect == "postgresql":  # statistics: the plan of a database in use
            conn.execute("ANALYZE events")
        return after, log.head(conn)


_FILTERS = {
    "double_opt_in": ConfirmationProcessor.where,
    "profiles import records": profiles._RECORDS,
    "consent": changes.WHERE,
}


def _plan(conn: Any, sql: str, params: list[Any]) -> list[str]:
    rows = conn.execute(
        "EXPLAIN " + ("QUERY PLAN " if conn.dialect == "sqlite" else "") + sql, params
    )
    return [str(r[-1] if conn.dialect == "sqlite" else r[0]) for r in rows.fetchall()]


@pytest.mark.parametrize("name", sorted(_FILTERS))
def test_window_filters_are_driven_by_the_seq_range(db: Database, name: str) -> None:
    after, head = _fill(db)
    with db.session() as conn:
        sql, params = Window(conn, after, head).select("seq", _FILTERS[name])
        plan = _plan(conn, sql, params)
        if conn.dialect == "sqlite":
            on_events = [p for p in plan if re.search(r"\b(SCAN|SEARCH) events\b", p)]
            assert on_events, plan
            assert all("INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in p for p in on_events), plan
        else:  # every scan of a partition of the log goes by its seq index
            on_events = [p for p in plan if _PG_SCAN.search(p)]
            assert on_events, plan
            for line in on_events:
                node = _PG_SCAN.search(line)
                assert node, plan
                assert node.group(1) != "Seq Scan", plan
                assert node.group(1) == "Bitmap Heap Scan" or "_seq_idx" in line, plan


_PG_SCAN = re.compile(
    r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: using \S+)? on events_p\d+"
)
_EVENTS_ACCESS = re.compile(r"^(SCAN|SEARCH) events\b(.*)$")


def test_every_window_read_of_a_round_goes_by_position(settings: Settings, db: Database) -> None:
    """Trace every statement of a full round of every processor on SQLite: each read of
    ``events`` uses the rowid (the window's range or single positions), never another index
    and never a scan of the log."""
    if db.dialect != "sqlite":
        pytest.skip("the statement trace is SQLite's (PostgreSQL's log has only the seq index)")
    after, head = _fill(db)
    units = processors(settings)
    with db.session() as conn:
        for p in units:  # every processor starts just before the segment events
            conn.execute(
                "INSERT INTO processor_offsets (name, seq, updated_at) VALUES (?, ?, 0) "
                "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                (p.name, after),
            )
        assert isinstance(conn, SQLiteConnection)
        traced: list[str] = []
        conn.raw.set_trace_callback(traced.append)
        try:
            result = run_round(conn, units, window=5_000)
        finally:
            conn.raw.set_trace_callback(None)
        assert not result.failed, result.failed
        assert all(result.cursors[p.name] == head for p in units), result.cursors
        reading = [s for s in traced if re.search(r"\b(FROM|JOIN)\s+events\b", s)]
        assert len(reading) >= 5, traced  # the round really read the log
        bad: list[tuple[str, str]] = []
        for statement in reading:
            for line in _plan(conn, statement, []):
                match = _EVENTS_ACCESS.match(line.strip())
                # a bare "SEARCH events" is MAX(seq) read from the rowid B-tree's end
                if match and match.group(2) and "INTEGER PRIMARY KEY" not in match.group(2):
                    bad.append((line, statement))
        assert not bad, bad
