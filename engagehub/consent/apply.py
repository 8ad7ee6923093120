"""Applying subscription changes in bulk: the consent state machine over one block of changes.

``apply_changes(conn, pending, ctx)`` takes (event, change) pairs in log order and:
loads the current rows of every key in a few statements (``load_states``) and, for keys that
have one, the newest change ever recorded for them (``newest_recorded``: refused changes can be
newer than the state); decides each change in memory (applied / superseded / refused, replaying
a key's whole history only when a change arrives older than one already seen); then writes the
states with one ``executemany`` upsert (key order) and the history with one ``executemany``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engagehub.consent import batches, machine
from engagehub.consent.batches import IMPORTED
from engagehub.consent.changes import UPDATED
from engagehub.consent.model import OWN_ACTIONS, PROTECTED, Change, refused_sql, resubscribe_refused
from engagehub.consent.store import change_event, load_states
from engagehub.model import IncomingEvent, StoredEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks
from engagehub.timeutil import now_ms

Key = tuple[str, str, str]
Pending = tuple[StoredEvent, Change]
_COMPANIONS = {
    ("subscribed", False): "Email Subscribed",
    ("unsubscribed", False): "Email Unsubscribed",
    ("subscribed", True): "Email Group Subscribed",
    ("unsubscribed", True): "Email Group Unsubscribed",
}
UPSERT_STATES = (
    "INSERT INTO subscription_states (contact, channel, group_name, status, event_time, "
    "seq, source, reason, own_action, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (contact, channel, group_name) DO UPDATE SET status = excluded.status, "
    "event_time = excluded.event_time, seq = excluded.seq, source = excluded.source, "
    "reason = excluded.reason, own_action = excluded.own_action, "
    "updated_at = excluded.updated_at"
)
INSERT_HISTORY = (
    "INSERT INTO subscription_history (contact, channel, group_name, status, "
    "previous_status, event_time, seq, source, reason, outcome, event_id, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (seq, contact, channel, group_name) DO NOTHING"
)


@dataclass(slots=True)
class Context:
    """What applying needs besides the changes: source names, and how to re-read old changes."""

    builtin: int
    names: dict[int, str]
    changes_at: Callable[[Connection, StoredEvent], Iterable[Change]]
    """Every change an older event of the log asks for (used by the out-of-order replay)."""
    machine_policy: str = "apply"
    """``consent_machine_unsubscribe_policy`` (``consent.machine``)."""
    derived: list[IncomingEvent] = field(default_factory=list)
    """Companion events to append (canonical re-emissions of vendor changes)."""
    _seen: dict[int, list[Change]] = field(default_factory=dict)

    def changes_of(self, conn: Connection, ev: StoredEvent) -> list[Change]:
        """``changes_at``, remembered for a few events (a replay may meet one record often)."""
        found = self._seen.get(ev.seq)
        if found is None:
            if len(self._seen) >= 16:
                self._seen.clear()
            found = self._seen[ev.seq] = list(self.changes_at(conn, ev))
        return found


def outcome(
    cur: dict[str, Any] | None, ev: StoredEvent, ch: Change, machine_policy: str = "apply"
) -> str:
    """What a change does to a state: ``applied``, ``superseded`` (older), ``refused`` or held
    (a machine's unsubscribe, ``consent.machine``)."""
    held = machine.held(machine_policy, ev, ch)
    if held is not None:
        return held
    if cur is None:
        return "applied"
    if (cur["event_time"], cur["seq"]) >= (ev.event_time, ev.seq):
        return "superseded"
    return "refused" if resubscribe_refused(cur, ch) else "applied"


def newest_recorded(
    conn: Connection, current: dict[Key, dict[str, Any]]
) -> dict[Key, tuple[int, int]]:
    """Per key with a state: the newest (event_time, seq) of any change recorded for it.

    Every change is in the history and the state's own change is one of them, so only history
    rows newer than the state (refused ones, or ones a replay overturned) need reading.
    """
    newest = {k: (int(v["event_time"]), int(v["seq"])) for k, v in current.items()}
    contacts = sorted({k[0] for k in current})
    for part in chunks(contacts):
        rows = conn.execute(
            "SELECT h.contact, h.channel, h.group_name, h.event_time, h.seq "
            "FROM subscription_history h JOIN subscription_states s ON s.contact = h.contact "
            "AND s.channel = h.channel AND s.group_name = h.group_name "
            f"WHERE h.contact IN ({marks(part)}) AND (h.event_time > s.event_time "
            "OR (h.event_time = s.event_time AND h.seq > s.seq))",
            part,
        ).fetchall()
        for contact, channel, group, event_time, seq in rows:
            key = (contact, channel, group)
            if key in newest:
                newest[key] = max(newest[key], (int(event_time), int(seq)))
    return newest


def apply_changes(conn: Connection, pending: Sequence[Pending], ctx: Context) -> None:
    """Fold (event, change) pairs, in log order, into states and history (idempotent)."""
    if not pending:
        return
    current = load_states(conn, ((c.contact, c.channel, c.group) for _, c in pending))
    newest = newest_recorded(conn, current)
    names = ctx.names
    states: dict[Key, tuple[Any, ...]] = {}
    history: list[tuple[Any, ...]] = []
    now = now_ms()
    for ev, ch in pending:
        key = (ch.contact, ch.channel, ch.group)
        cur = current.get(key)
        mine = (ev.event_time, ev.seq)
        source = names.get(ev.source_id) or str(ev.source_id)
        winner: Pending | None
        if cur is None:  # the first change of a subscription: nothing to compare
            previous = None
            result = outcome(None, ev, ch, ctx.machine_policy)
            winner = (ev, ch) if result == "applied" else None
        else:
            previous = cur["status"]
            result = outcome(cur, ev, ch, ctx.machine_policy)
            winner = (ev, ch) if result == "applied" else None
            if newest[key] > mine:
                # Out of order: replay every change of this subscription in (time, seq) order,
                # so the result never depends on arrival order (an old own unsubscribe still
                # blocks the newer bulk subscribe it precedes, and vice versa).
                winner = _replay(conn, key, ev, ch, history, ctx)
                if winner is not None and winner[0].seq == cur["seq"]:
                    winner = None  # the replay confirms what is stored
                if winner is not None and winner[0].seq == ev.seq:
                    result = "applied"
                elif result == "applied":
                    result = "superseded"
        if winner is not None:
            w_ev, w_ch = winner
            own = int(w_ch.reason in PROTECTED)
            current[key] = {
                "status": w_ch.status,
                "event_time": w_ev.event_time,
                "seq": w_ev.seq,
                "own_action": own,
                "reason": w_ch.reason,
            }
            states[key] = (
                *key,
                w_ch.status,
                w_ev.event_time,
                w_ev.seq,
                names.get(w_ev.source_id) or str(w_ev.source_id),
                w_ch.reason,
                own,
                now,
            )
            ctx.derived.extend(_derived(w_ev, w_ch, previous, ctx.builtin))
        history.append(
            (*key, ch.status, previous, *mine, source, ch.reason, result, ev.event_id, now)
        )
        old = newest.get(key)
        newest[key] = mine if old is None or mine > old else old
    conn.executemany(UPSERT_STATES, [states[k] for k in sorted(states)])  # pages written once
    conn.executemany(INSERT_HISTORY, history)


def _replay(
    conn: Connection,
    key: Key,
    ev: StoredEvent,
    ch: Change,
    pending: Sequence[tuple[Any, ...]],
    ctx: Context,
) -> Pending | None:
    """The change that wins when every change of ``key`` is applied in (time, seq) order."""
    rows = conn.all(
        "SELECT seq FROM subscription_history WHERE contact = ? AND channel = ? AND group_name = ?",
        key,
    )
    seqs = {int(r["seq"]) for r in rows} | {int(h[6]) for h in pending if h[:3] == key}
    seqs.discard(ev.seq)
    changes: list[Pending] = [(ev, ch)]
    if seqs:
        listed = ", ".join(str(s) for s in sorted(seqs))
        for other in log.read_range(conn, 0, max(seqs), where=f"seq IN ({listed})"):
            for change in ctx.changes_of(conn, other):
                if (change.contact, change.channel, change.group) == key:
                    changes.append((other, change))
    state: dict[str, Any] | None = None
    winner: Pending | None = None
    for other, change in sorted(changes, key=lambda c: (c[0].event_time, c[0].seq)):
        if outcome(state, other, change, ctx.machine_policy) == "applied":
            state = {
                "status": change.status,
                "event_time": other.event_time,
                "seq": other.seq,
                "own_action": int(change.reason in PROTECTED),
            }
            winner = (other, change)
    return winner


def _derived(
    ev: StoredEvent, ch: Change, previous: str | None, builtin: int
) -> list[IncomingEvent]:
    """Canonical events announcing an applied change (idempotent dedup keys).

    Vendor changes are re-emitted as "Channel/Group Subscription Updated"; email changes get an
    "Email ..." companion. A CSV import's changes are announced by its own log records (one per
    chunk, rows in ``import_batches``), not one event per change.
    """
    if ev.event == IMPORTED:
        return []
    out: list[IncomingEvent] = []
    base = f"consent:{ev.event_id}:{ch.channel}:{ch.group}"
    extra = {"derived_from": ev.event_id, "previous_status": previous or "no_status"}
    if not (ev.source_id == builtin and ev.event in UPDATED):
        out.append(change_event(ch, ev.event_time, base, origin_event=ev.event, **extra))
    companion = _COMPANIONS.get((ch.status, bool(ch.group)))
    if ch.channel == "email" and companion:
        event = change_event(ch, ev.event_time, base + ":email", **extra)
        event.event = event.vendor_event = companion
        out.append(event)
    for item in out:
        item.user_id = ev.user_id
    return out


# --- an import's record, set-based ---------------------------------------------------------
# The changes go to a per-connection staging table; history and states are then written by
# INSERT ... SELECT (joined with the current states when any key has one), so the state machine
# runs inside the database (an import's changes are never a machine's: ``consent.machine``
# holds nothing here). Only keys with a change recorded at or after the record's
# (event_time, seq) (an older import arriving late, a replay) take the Python path above.

_STAGE = (  # keyed: rows come out in key order (no sort for the joins and the upserts below)
    "CREATE TEMP TABLE IF NOT EXISTS consent_stage (contact TEXT NOT NULL, "
    "channel TEXT NOT NULL, group_name TEXT NOT NULL, status TEXT NOT NULL, "
    "PRIMARY KEY (contact, channel, group_name, status))"
)
_ON = "s.contact = c.contact AND s.channel = c.channel AND s.group_name = c.group_name"
_REFUSED = refused_sql("s", "c")
_HISTORY = (
    "INSERT INTO subscription_history (contact, channel, group_name, status, "
    "previous_status, event_time, seq, source, reason, outcome, event_id, recorded_at) "
)
_STATES = (
    "INSERT INTO subscription_states (contact, channel, group_name, status, event_time, "
    "seq, source, reason, own_action, updated_at) "
)
_ON_STATE = (
    " ON CONFLICT (contact, channel, group_name) DO UPDATE SET status = excluded.status, "
    "event_time = excluded.event_time, seq = excluded.seq, source = excluded.source, "
    "reason = excluded.reason, own_action = excluded.own_action, "
    "updated_at = excluded.updated_at"
)


def apply_record(conn: Connection, ev: StoredEvent, ctx: Context) -> None:
    """Fold one import record's changes (one time, one seq; a key repeats only with the same
    status) into history and states in a few statements; its rows never become Python
    objects unless a key needs the replay."""
    text = batches.changes_json(conn, ev)
    if text is None:
        return
    reason = str(ev.properties.get("reason") or "csv")
    allow = bool(ev.properties.get("allow_resubscribe"))
    conn.execute(_STAGE + (" WITHOUT ROWID" if conn.dialect == "sqlite" else ""))
    conn.execute("DELETE FROM consent_stage")
    conn.execute(  # a repeated row (same key, same status: no conflict) counts once
        "INSERT INTO consent_stage (contact, channel, group_name, status) "
        + batches.staged(conn, "?")
        + " WHERE 1 = 1 ON CONFLICT DO NOTHING",
        (text.decode(),),
    )
    t, seq = ev.event_time, ev.seq
    known = conn.execute(
        "SELECT c.contact, c.channel, c.group_name, s.event_time, s.seq FROM consent_stage c "
        f"JOIN subscription_states s ON {_ON}"
    ).fetchall()
    if known:
        late = {(str(a), str(b), str(c)) for a, b, c, st, ss in known if (st, ss) >= (t, seq)}
        late.update(
            (str(a), str(b), str(c))
            for a, b, c in conn.execute(
                "SELECT c.contact, c.channel, c.group_name FROM consent_stage c "
                "JOIN subscription_history s ON "
                f"{_ON} WHERE s.event_time > ? OR (s.event_time = ? AND s.seq >= ?)",
                (t, t, seq),
            ).fetchall()
        )
        if late:  # the state machine in Python for these few keys, with their replay
            pending = [
                (ev, c)
                for c in batches.changes_of(conn, ev)
                if (c.contact, c.channel, c.group) in late
            ]
            apply_changes(conn, pending, ctx)
            conn.executemany(
                "DELETE FROM consent_stage WHERE contact = ? AND channel = ? AND group_name = ?",
                sorted(late),
            )
    source = ctx.names.get(ev.source_id) or str(ev.source_id)
    now = now_ms()
    own = int(reason in PROTECTED)
    overrides = int(allow or reason in OWN_ACTIONS)  # what Change.own_action says of it
    if not known:  # nothing known of any key: every change applies, no previous status
        conn.execute(
            _HISTORY + "SELECT contact, channel, group_name, status, NULL, ?, ?, ?, ?, "
            "'applied', ?, ? FROM consent_stage WHERE 1 = 1 ORDER BY contact "
            "ON CONFLICT (seq, contact, channel, group_name) DO NOTHING",
            (t, seq, source, reason, ev.event_id, now),
        )
        conn.execute(
            _STATES + "SELECT contact, channel, group_name, status, ?, ?, ?, ?, ?, ? "
            "FROM consent_stage WHERE 1 = 1 ORDER BY contact, channel, group_name" + _ON_STATE,
            (t, seq, source, reason, own, now),
        )
    else:
        conn.execute(
            _HISTORY + "SELECT c.contact, c.channel, c.group_name, c.status, s.status, ?, ?, "
            f"?, ?, CASE WHEN {_REFUSED} THEN 'refused' ELSE 'applied' END, ?, ? "
            f"FROM consent_stage c LEFT JOIN subscription_states s ON {_ON} WHERE 1 = 1 "
            "ORDER BY c.contact ON CONFLICT (seq, contact, channel, group_name) DO NOTHING",
            (t, seq, source, reason, overrides, ev.event_id, now),
        )
        conn.execute(
            _STATES + "SELECT c.contact, c.channel, c.group_name, c.status, ?, ?, ?, ?, ?, ? "
            f"FROM consent_stage c LEFT JOIN subscription_states s ON {_ON} "
            f"WHERE NOT COALESCE({_REFUSED}, FALSE) "
            "ORDER BY c.contact, c.channel, c.group_name" + _ON_STATE,
            (t, seq, source, reason, own, now, overrides),
        )
    conn.execute("DELETE FROM consent_stage")
