"""The consent processor: applies every subscription change of the log, newest wins.

Ordering is by ``(event_time, seq)``: an older change arriving late is recorded in the history
as ``superseded`` and does not touch the current state. A person's own unsubscribe (keyword,
link, preference page, spam report, vendor unsubscribe) and a hard-bounce suppression are not
undone by a bulk API/CSV resubscribe unless it says ``allow_resubscribe`` (``refused``).
Changes that came from vendor events are re-emitted as canonical "Channel/Group Subscription
Updated" events (and the "Email ..." companions), so exports and destinations see every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagehub.consent.changes import UPDATED, WHERE, changes_of
from engagehub.consent.model import OWN_ACTIONS, Change
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
        derived: list[IncomingEvent] = []
        now = now_ms()
        for ev, ch in pending:
            key = (ch.contact, ch.channel, ch.group)
            cur = current.get(key)
            previous = cur["status"] if cur else None
            outcome = self._outcome(cur, ev, ch)
            source = names.get(ev.source_id, str(ev.source_id))
            if outcome == "applied":
                own = ch.reason in PROTECTED
                current[key] = {
                    "status": ch.status,
                    "event_time": ev.event_time,
                    "seq": ev.seq,
                    "own_action": int(own),
                    "reason": ch.reason,
                }
                states[key] = (
                    ch.contact,
                    ch.channel,
                    ch.group,
                    ch.status,
                    ev.event_time,
                    ev.seq,
                    source,
                    ch.reason,
                    int(own),
                    now,
                )
                derived.extend(self._derived(ev, ch, previous, builtin))
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
    def _outcome(cur: dict[str, Any] | None, ev: StoredEvent, ch: Change) -> str:
        if cur is None:
            return "applied"
        if (cur["event_time"], cur["seq"]) >= (ev.event_time, ev.seq):
            return "superseded"
        protected = cur["status"] == "unsubscribed" and cur["own_action"]
        if protected and ch.status == "subscribed" and not ch.own_action:
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
