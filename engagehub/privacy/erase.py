"""Erasure jobs: remove a person from the log and every derived table, keeping aggregates right.

Steps, each committed before the next (a killed job resumes at the first unfinished one):

1. ``requested`` — in the request's transaction: the person's identifiers become suppression
   keys (from then on their new events are dropped) and the job row names their profile ids.
2. ``deleted`` — ONE transaction: the person's events leave the log (positions leave gaps) and
   the index; lifecycles leave analytics with their contributions subtracted from the rollups
   and campaign totals; unmapped counters go down; profiles, identities, conflicts, consent
   states and history, queued and past sends, journey runs, import error rows go; audit entries
   naming an identifier are redacted; export targets get a deletion manifest and a fresh
   consent snapshot. On PostgreSQL it holds the append lock and every processor cursor, so no
   append or processor round interleaves.
3. ``notified`` — every enabled destination gets one "User Deleted" event with the identifiers
   (delivered directly, never stored in the log); then the job forgets them.
4. ``wiped`` — SQLite: deleted content was zeroed (``secure_delete``), free pages are
   overwritten and the WAL is checkpointed and truncated; PostgreSQL: the tables are vacuumed.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from typing import Any

import orjson

from engagehub.consent import batches
from engagehub.errors import NotFound
from engagehub.privacy import person as people
from engagehub.privacy import suppress
from engagehub.privacy.person import Person
from engagehub.profiles import members
from engagehub.settings import Settings
from engagehub.storage import Database, event_index
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in
from engagehub.timeutil import format_ts, now_ms

logger = logging.getLogger(__name__)
STEPS = ("requested", "deleted", "notified", "wiped")
_COLUMNS = "id, reason, state, step, requested_by, counts, error, created_at, finished_at"
PAUSE_ENV = "ENGAGEHUB_ERASURE_PAUSE_AFTER"
"""Test hook: after committing this step the job announces it and waits (to be killed)."""


def request(
    conn: Connection, key: str, reason: str | None, requested_by: str, region: str
) -> dict[str, Any]:
    """Record an erasure of the person ``key`` names and suppress them at once."""
    now = now_ms()
    eid = "er_" + uuid.uuid4().hex
    with conn.transaction():
        person = people.resolve(conn, key, region)
        suppress.add(conn, eid, person.identities, now)
        subject = suppress.digest(suppress.salt(conn), key.strip())
        conn.execute(
            "INSERT INTO privacy_erasures (id, subject, reason, state, step, requested_by, "
            "profiles, created_at, updated_at) "
            "VALUES (?, ?, ?, 'pending', 'requested', ?, ?, ?, ?)",
            (eid, subject, reason, requested_by, orjson.dumps(person.profiles).decode(), now, now),
        )
    return get(conn, eid)


def get(conn: Connection, eid: str) -> dict[str, Any]:
    """An erasure's public state."""
    row = conn.one(f"SELECT {_COLUMNS} FROM privacy_erasures WHERE id = ?", (eid,))
    if row is None:
        raise NotFound(f"no erasure with id {eid!r}", id=eid)
    return {
        **row,
        "counts": orjson.loads(row["counts"]),
        "created_at": format_ts(row["created_at"]),
        "finished_at": format_ts(row["finished_at"]) if row["finished_at"] else None,
    }


def unfinished(conn: Connection) -> list[str]:
    """Ids of erasures still to finish, oldest first."""
    rows = conn.execute(
        "SELECT id FROM privacy_erasures WHERE state = 'pending' ORDER BY created_at, id"
    ).fetchall()
    return [str(r[0]) for r in rows]


def run(db: Database, eid: str, settings: Settings) -> dict[str, Any]:
    """Take a job from its last finished step to the end (safe to call again after a crash)."""
    with db.session() as conn:
        if conn.dialect == "sqlite":
            conn.execute("PRAGMA secure_delete = ON")  # deleted cells are zeroed on their pages
        row = conn.one("SELECT step, state FROM privacy_erasures WHERE id = ?", (eid,))
        if row is None:
            raise NotFound(f"no erasure with id {eid!r}", id=eid)
        step = str(row["step"])
        if step == "requested":
            _pause("requested")
            forget(conn, eid)
            step = _pause("deleted")
        if step == "deleted":
            notify(conn, eid, settings)
            step = _pause("notified")
        if step == "notified":
            wipe(conn)
            _advance(conn, eid, "wiped", state="done")
            _pause("wiped")
        return get(conn, eid)


def _pause(step: str) -> str:
    if os.environ.get(PAUSE_ENV) == step:
        print(f"erasure paused after {step}", flush=True)
        while True:
            time.sleep(1)
    return step


def _advance(conn: Connection, eid: str, step: str, state: str = "pending", **cols: Any) -> None:
    sets = ", ".join(f"{c} = ?" for c in cols)
    now = now_ms()
    with conn.transaction():
        conn.execute(
            f"UPDATE privacy_erasures SET step = ?, state = ?, updated_at = ?"
            f"{', ' + sets if sets else ''}{', finished_at = ?' if state == 'done' else ''} "
            "WHERE id = ?",
            [step, state, now, *cols.values(), *([now] if state == "done" else []), eid],
        )


def _lock_followers(conn: Connection) -> None:
    """PostgreSQL: wait for appends and processor rounds in flight, and hold them off."""
    if conn.dialect != "postgresql":
        return  # one writer at a time: the transaction itself excludes them
    from engagehub.storage import locks

    # Cursors first: a processor round holding them may still append (derived events).
    conn.execute("SELECT name FROM processor_offsets ORDER BY name FOR UPDATE").fetchall()
    conn.execute("SELECT pg_advisory_xact_lock(?)", (locks.APPEND,))


def forget(conn: Connection, eid: str) -> None:
    """Step 2: one transaction removes the person from the log and every derived table."""
    with conn.transaction():
        row = conn.one("SELECT step, profiles FROM privacy_erasures WHERE id = ?", (eid,))
        if row is None or row["step"] != "requested":
            return
        _lock_followers(conn)
        person = _person(conn, orjson.loads(row["profiles"]))
        suppress.add(conn, eid, person.identities, now_ms())  # identities learnt since
        messages = people.message_ids(conn, person)
        events = people.events(conn, person, messages)
        seqs = sorted(e.seq for e in events)
        counts: dict[str, int] = {"events": len(seqs), "profiles": len(person.profiles)}
        counts["messages"] = _forget_analytics(conn, person, messages, seqs)
        _forget_unmapped(conn, events)
        counts.update(_forget_rows(conn, person, messages))
        # CSV imports keep their rows in import_batches (one log record per chunk, issue 15)
        counts["import_rows"] = batches.erase(conn, set(person.values))
        event_index.forget(conn, events)
        for part in chunks(seqs):
            conn.execute(f"DELETE FROM events WHERE {where_in('seq', part)}", part)
        if conn.dialect == "postgresql" and _has_table(conn, "event_keys"):
            # a client may build its message ids from the user id: the keys go too
            conn.executemany(
                "DELETE FROM event_keys WHERE source_id = ? AND dedup_key = ?",
                sorted({(e.source_id, e.dedup_key) for e in events}),
            )
        _redact_audit(conn, person)
        conn.execute(
            "INSERT INTO privacy_deletions (erasure_id, event_ids, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (erasure_id) DO NOTHING",
            (eid, orjson.dumps(sorted(e.event_id for e in events)).decode(), now_ms()),
        )
        conn.execute("UPDATE export_targets SET snapshot_seq = 0")  # next run: a clean snapshot
        notice = {
            "erasure_id": eid,
            "identifiers": [{"kind": k, "value": v} for k, v in person.identities],
            "user_id": next(iter(person.of("user_id")), None),
            "anonymous_id": next(iter(person.of("anonymous_id")), None),
        }
        _advance(
            conn,
            eid,
            "deleted",
            profiles="[]",
            notice=orjson.dumps(notice).decode(),
            counts=orjson.dumps(counts).decode(),
        )


def _has_table(conn: Connection, name: str) -> bool:
    return bool(conn.scalar("SELECT to_regclass(?) IS NOT NULL", (name,)))


def _person(conn: Connection, profiles: list[str]) -> Person:
    return Person(sorted(profiles), members.listed(conn, profiles))


def _forget_analytics(conn: Connection, person: Person, messages: set[str], seqs: list[int]) -> int:
    """Drop the person's lifecycles; rollups and totals lose exactly what they contributed.

    The analytics processor's own ``settle``: contributions of the touched messages out, the
    change, conversions redone, contributions (none left for deleted messages) back in.
    """
    from engagehub.analytics import staging
    from engagehub.analytics.processor import settle

    found = 0
    for part in chunks(sorted(messages)):
        found += int(
            conn.scalar(
                f"SELECT COUNT(*) FROM analytics_messages WHERE {where_in('message_id', part)}",
                part,
            )
        )
    staging.prepare(conn)
    staging.touch(conn, messages)

    def change() -> None:
        ids = sorted(messages)
        for table in ("analytics_messages", "analytics_message_hours", "analytics_message_aliases"):
            for part in chunks(ids):
                conn.execute(f"DELETE FROM {table} WHERE {where_in('message_id', part)}", part)
        for column, values in (
            ("user_id", person.of("user_id")),
            ("contact", person.contacts),
            ("message_id", ids),
            ("seq", seqs),
        ):
            for chunk in chunks(values):
                conn.execute(
                    f"DELETE FROM analytics_goal_events WHERE {where_in(column, chunk)}", chunk
                )

    settle(conn, change)
    return found


def _forget_unmapped(conn: Connection, events: list[Any]) -> None:
    """Counters of unknown event names, less the erased events already counted."""
    counted = int(conn.scalar("SELECT seq FROM processor_offsets WHERE name = 'unmapped'") or 0)
    down = Counter(
        (e.source_id, e.vendor_event or "")
        for e in events
        if e.event is None and e.type == "track" and e.seq <= counted
    )
    for (source_id, name), n in sorted(down.items()):
        conn.execute(
            "UPDATE unmapped_events SET count = count - ? WHERE source_id = ? AND vendor_event = ?",
            (n, source_id, name),
        )
    conn.execute("DELETE FROM unmapped_events WHERE count <= 0")


# (table, column, which values): rows that belong to the person.
_ROWS = (
    ("subscription_states", "contact", "contacts"),
    ("subscription_history", "contact", "contacts"),
    ("message_sends", "contact", "contacts"),
    ("message_sends", "id", "messages"),
    ("journey_runs", "contact", "contacts"),
    ("suppressions", "contact", "contacts"),
    ("suppression_signals", "contact", "contacts"),
    ("suppression_deliveries", "contact", "contacts"),
    ("import_errors", "value", "values"),
    ("consent_person_requests", "id_value", "values"),
    ("profile_conflicts", "profile_id", "profiles"),
    ("profile_conflicts", "other_profile_id", "profiles"),
    ("profile_conflicts", "other_profile_id", "values"),
    ("profiles", "id", "profiles"),
)


def _forget_rows(conn: Connection, person: Person, messages: set[str]) -> dict[str, int]:
    values = {
        "contacts": person.contacts,
        "messages": sorted(messages),
        "values": sorted(person.values),
        "profiles": person.profiles,
    }
    removed: Counter[str] = Counter()
    for part in chunks(values["values"]):  # by value (indexed), only the person's profiles'
        for mine in chunks(person.profiles, 90):
            sql = (
                f"DELETE FROM profile_identities WHERE {where_in('value', part)} "
                f"AND {where_in('profile_id', mine)}"
            )
            cur = conn.execute(sql, [*part, *mine])
            removed["profile_identities"] += max(cur.rowcount or 0, 0)
    for table, column, which in _ROWS:
        for part in chunks(values[which]):
            cur = conn.execute(f"DELETE FROM {table} WHERE {where_in(column, part)}", part)
            removed[table] += max(cur.rowcount or 0, 0)
    for value in values["values"]:  # a rejected CSV row quotes the whole line
        conn.execute("DELETE FROM import_errors WHERE original LIKE ?", (f"%{_like(value)}%",))
    return {
        "subscriptions": removed["subscription_states"],
        "sends": removed["message_sends"],
        "journey_runs": removed["journey_runs"],
    }


def _like(value: str) -> str:
    return value.replace("\\", "").replace("%", "").replace("_", "")


def _redact_audit(conn: Connection, person: Person) -> None:
    """Audit entries keep who did what, but not the erased person's identifiers."""
    for value in sorted(person.values, key=len, reverse=True):
        if len(value) < 3:
            continue
        pattern = f"%{_like(value)}%"
        conn.execute(
            "UPDATE audit_log SET params = REPLACE(params, ?, '[erased]'), "
            "target = REPLACE(target, ?, '[erased]') WHERE params LIKE ? OR target LIKE ?",
            (value, value, pattern, pattern),
        )


def notify(conn: Connection, eid: str, settings: Settings) -> None:
    """Step 3: tell every enabled destination, then forget what we told them."""
    from engagehub.destinations import store as destinations
    from engagehub.destinations.errors import DeliveryError
    from engagehub.destinations.service import Deliverer
    from engagehub.model import StoredEvent

    row = conn.one("SELECT notice, counts FROM privacy_erasures WHERE id = ?", (eid,))
    assert row is not None
    notice = orjson.loads(row["notice"] or "{}")
    counts = orjson.loads(row["counts"])
    told, failed = [], []
    if notice:
        now = now_ms()
        event = StoredEvent(
            0, str(uuid.uuid5(uuid.NAMESPACE_URL, f"engagehub:erasure:{eid}")), 0, eid, "track",
            "User Deleted", "User Deleted", None, notice.get("user_id"),
            notice.get("anonymous_id"), None, None, None, now, now,
            {"erasure_id": eid, "identifiers": notice["identifiers"]}, "{}",
        )  # fmt: skip
        deliverer = Deliverer(settings)
        try:
            for dest in destinations.list_all(conn):
                if dest.disabled:
                    continue
                for attempt in range(3):
                    try:
                        deliverer.sender(dest).send(dest, f"{eid}:{dest.name}", [event])
                        told.append(dest.name)
                        break
                    except DeliveryError as exc:
                        if attempt == 2:
                            failed.append({"destination": dest.name, "error": exc.message})
                        else:
                            time.sleep(0.5 * (attempt + 1))
        finally:
            deliverer.close()
    counts["notified"] = told
    if failed:
        counts["notice_failed"] = failed
    _advance(conn, eid, "notified", notice=None, counts=orjson.dumps(counts).decode())


_VACUUMED = (
    "events",
    "event_index",
    "profiles",
    "profile_identities",
    "subscription_states",
    "subscription_history",
    "analytics_messages",
    "message_sends",
    "journey_runs",
    "audit_log",
    "privacy_erasures",
)


def wipe(conn: Connection) -> None:
    """Step 4: no copy of deleted content left in the database files."""
    if conn.dialect == "postgresql":
        for table in _VACUUMED:
            conn.execute(f"VACUUM {table}")
        return
    conn.execute("PRAGMA secure_delete = ON")
    page = int(conn.scalar("PRAGMA page_size"))
    with conn.transaction():  # fill every free page with zeros, then free them again
        conn.execute("CREATE TABLE IF NOT EXISTS privacy_wipe (b BLOB)")
        while int(conn.scalar("PRAGMA freelist_count")) > 0:
            free = int(conn.scalar("PRAGMA freelist_count"))
            conn.execute(
                "INSERT INTO privacy_wipe (b) SELECT zeroblob(?) "
                "FROM (SELECT 1 UNION ALL SELECT 2)",
                (page * min(free, 256) // 2,),
            )
        conn.execute("DROP TABLE privacy_wipe")
    for _ in range(50):  # readers holding an old snapshot make a checkpoint wait
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy is None or int(busy[0]) == 0:
            return
        time.sleep(0.1)
    logger.warning("WAL checkpoint stayed busy; deleted pages leave the WAL at the next one")
