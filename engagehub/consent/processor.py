"""The consent processor: applies every subscription change of the log, newest wins.

Ordering is by ``(event_time, seq)``: when a change arrives after a newer one of the same
subscription, every change of that subscription is replayed in that order, so the state never
depends on arrival order (the late change is recorded as ``superseded`` unless it now wins).
A person's own unsubscribe (keyword, link, preference page, spam report, vendor unsubscribe)
and a hard-bounce suppression are not undone by a bulk API/CSV resubscribe unless it says
``allow_resubscribe`` (``refused``).
Changes that came from vendor events are re-emitted as canonical "Channel/Group Subscription
Updated" events (and the "Email ..." companions), so exports and destinations see every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagehub.consent import machine
from engagehub.consent.changes import UPDATED, WHERE, changes_of
from engagehub.consent.model import OWN_ACTIONS, PENDING, Change
from engagehub.consent.store import builtin_source_id, change_event, load_states
from engagehub.model import IncomingEvent, StoredEvent
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

PROTECTED = OWN_ACTIONS | {"hard_bounce"}
_COMPANIONS = {
    ("subscribed", False): "Email Subscribed",
    ("unsubscribed", False): "Email Unsubscribed",
    ("subscribed", True): "Email Group Subscribed",
    ("unsubscribed", True): "Email Group Unsubscribed",
}


class ConsentProcessor:
    """Derived tables ``subscription_states`` and ``subscription_history``."""

    name = "consent"
    where: str | None = WHERE
    payload = True

    def __init__(self, settings: Settings) -> None:
        self.region = settings.default_region
        self.spam_policy = settings.consent_spam_policy
        self.bounce_policy = settings.consent_bounce_policy
        self.machine_policy = settings.consent_machine_unsubscribe_policy

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Apply the batch in log order (idempotent: a replayed window changes nothing)."""
        builtin = builtin_source_id(conn)
        pending = [
            (ev, ch)
            for ev in events
            for ch in changes_of(ev, builtin, self.region, self.spam_policy, self.bounce_policy)
        ]
        if not pending:
            return
        names = {s.id: s.name for s in source_store.list_all(conn)}
        current = load_states(conn, ((c.contact, c.channel, c.group) for _, c in pending))
        states: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        history: list[tuple[Any, ...]] = []
        newest: dict[tuple[str, str, str], tuple[int, int]] = {}  # this batch, per subscription
        derived: list[IncomingEvent] = []
        now = now_ms()
        for ev, ch in pending:
            key = (ch.contact, ch.channel, ch.group)
            cur = current.get(key)
            previous = cur["status"] if cur else None
            outcome = self._outcome(cur, ev, ch)
            source = names.get(ev.source_id, str(ev.source_id))
            winner: tuple[StoredEvent, Change] | None = (ev, ch) if outcome == "applied" else None
            if cur is not None and self._newer_known(conn, key, ev, newest):
                # Out of order: replay every change of this subscription in (time, seq) order,
                # so the result never depends on arrival order (an old own unsubscribe still
                # blocks the newer bulk subscribe it precedes, and vice versa).
                winner = self._replay(conn, key, ev, ch, builtin, history)
                if winner is not None and winner[0].seq == cur["seq"]:
                    winner = None  # the replay confirms what is stored
                if winner is not None and winner[0].seq == ev.seq:
                    outcome = "applied"
                elif outcome == "applied":
                    outcome = "superseded"
            if winner is not None:
                w_ev, w_ch = winner
                own = w_ch.reason in PROTECTED
                current[key] = {
                    "status": w_ch.status,
                    "event_time": w_ev.event_time,
                    "seq": w_ev.seq,
                    "own_action": int(own),
                    "reason": w_ch.reason,
                }
                states[key] = (
                    w_ch.contact,
                    w_ch.channel,
                    w_ch.group,
                    w_ch.status,
                    w_ev.event_time,
                    w_ev.seq,
                    names.get(w_ev.source_id, str(w_ev.source_id)),
                    w_ch.reason,
                    int(own),
                    now,
                )
                derived.extend(self._derived(w_ev, w_ch, previous, builtin))
            history.append(
                (
                    ch.contact,
                    ch.channel,
                    ch.group,
                    ch.status,
                    previous,
                    ev.event_time,
                    ev.seq,
                    source,
                    ch.reason,
                    outcome,
                    ev.event_id,
                    now,
                )
            )
            newest[key] = max(newest.get(key, (ev.event_time, ev.seq)), (ev.event_time, ev.seq))
        conn.executemany(
            "INSERT INTO subscription_states (contact, channel, group_name, status, event_time, "
            "seq, source, reason, own_action, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (contact, channel, group_name) DO UPDATE SET status = excluded.status, "
            "event_time = excluded.event_time, seq = excluded.seq, source = excluded.source, "
            "reason = excluded.reason, own_action = excluded.own_action, "
            "updated_at = excluded.updated_at",
            [states[k] for k in sorted(states)],  # key order: B-tree pages written once
        )
        conn.executemany(
            "INSERT INTO subscription_history (contact, channel, group_name, status, "
            "previous_status, event_time, seq, source, reason, outcome, event_id, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (seq, contact, channel, group_name) DO NOTHING",
            history,
        )
        if derived:
            log.append(conn, [log.Batch(builtin, now, derived)])

    @staticmethod
    def _newer_known(
        conn: Connection,
        key: tuple[str, str, str],
        ev: StoredEvent,
        newest: dict[tuple[str, str, str], tuple[int, int]],
    ) -> bool:
        """Whether any change of ``key`` seen before (applied, refused...) is newer than ``ev``."""
        mine = (ev.event_time, ev.seq)
        if newest.get(key, (mine[0] - 1, 0)) > mine:
            return True
        return bool(
            conn.scalar(
                "SELECT 1 FROM subscription_history WHERE contact = ? AND channel = ? "
                "AND group_name = ? AND (event_time > ? OR (event_time = ? AND seq > ?)) "
                "LIMIT 1",
                (*key, ev.event_time, ev.event_time, ev.seq),
            )
        )

    def _replay(
        self,
        conn: Connection,
        key: tuple[str, str, str],
        ev: StoredEvent,
        ch: Change,
        builtin: int,
        pending: Sequence[tuple[Any, ...]],
    ) -> tuple[StoredEvent, Change] | None:
        """The change that wins when every change of ``key`` is applied in (time, seq) order."""
        rows = conn.all(
            "SELECT seq FROM subscription_history WHERE contact = ? AND channel = ? "
            "AND group_name = ?",
            key,
        )
        seqs = {int(r["seq"]) for r in rows} | {int(h[6]) for h in pending if h[:3] == key}
        seqs.discard(ev.seq)
        changes: list[tuple[StoredEvent, Change]] = [(ev, ch)]
        if seqs:
            listed = ", ".join(str(s) for s in sorted(seqs))
            for other in log.read_range(conn, 0, max(seqs), where=f"seq IN ({listed})"):
                for change in changes_of(
                    other, builtin, self.region, self.spam_policy, self.bounce_policy
                ):
                    if (change.contact, change.channel, change.group) == key:
                        changes.append((other, change))
        state: dict[str, Any] | None = None
        winner: tuple[StoredEvent, Change] | None = None
        for other, change in sorted(changes, key=lambda c: (c[0].event_time, c[0].seq)):
            if self._outcome(state, other, change) == "applied":
                state = {
                    "status": change.status,
                    "event_time": other.event_time,
                    "seq": other.seq,
                    "own_action": int(change.reason in PROTECTED),
                }
                winner = (other, change)
        return winner

    def _outcome(self, cur: dict[str, Any] | None, ev: StoredEvent, ch: Change) -> str:
        held = machine.held(self.machine_policy, ev, ch)
        if held is not None:
            return held
        if cur is None:
            return "applied"
        if (cur["event_time"], cur["seq"]) >= (ev.event_time, ev.seq):
            return "superseded"
        protected = cur["status"] == "unsubscribed" and cur["own_action"]
        if protected and ch.status in ("subscribed", PENDING) and not ch.own_action:
            return "applied" if ch.allow_resubscribe else "refused"
        return "applied"

    @staticmethod
    def _derived(
        ev: StoredEvent, ch: Change, previous: str | None, builtin: int
    ) -> list[IncomingEvent]:
        """Canonical events announcing an applied change (idempotent dedup keys)."""
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

    def reset(self, conn: Connection) -> None:
        """Forget states and history (rebuilt from the log by ``engagehub reprocess consent``)."""
        conn.execute("DELETE FROM subscription_states")
        conn.execute("DELETE FROM subscription_history")
