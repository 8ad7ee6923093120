"""The consent processor: applies every subscription change of the log, newest wins.

Ordering is by ``(event_time, seq)``: when a change arrives after a newer one of the same
subscription, every change of that subscription is replayed in that order, so the state never
depends on arrival order (the late change is recorded as ``superseded`` unless it now wins).
A person's own unsubscribe (keyword, link, preference page, spam report, vendor unsubscribe)
and a hard-bounce suppression are not undone by a bulk API/CSV resubscribe unless it says
``allow_resubscribe`` (``refused``).
Changes that came from vendor events are re-emitted as canonical "Channel/Group Subscription
Updated" events (and the "Email ..." companions), so exports and destinations see every change.

Two parts, so other rules plug in without touching the state machine: which events change
consent (``WHERE`` in SQL, then ``changes_at`` per event: ``persons.changes_with_people`` /
``changes.changes_of`` for single events, ``batches.changes_of`` for an import's records) and
applying a block of changes in bulk (``apply.apply_changes``; ``apply.apply_record`` runs an
import record's in SQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engagehub.consent import batches
from engagehub.consent.apply import Context, Pending, apply_changes, apply_record
from engagehub.consent.changes import WHERE
from engagehub.consent.model import Change
from engagehub.consent.persons import changes_with_people, resolve_waiting
from engagehub.consent.store import builtin_source_id
from engagehub.model import StoredEvent
from engagehub.processing.window import Window
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

__all__ = ["ConsentProcessor"]

BLOCK = 20_000
"""Changes applied per block: an import's records are loaded a few at a time, never a window's."""


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
        self._builtin = 0

    def changes_at(self, conn: Connection, ev: StoredEvent) -> Iterable[Change]:
        """Every change one event of the log asks for (import records: all their rows')."""
        if batches.is_record(ev, self._builtin):
            return batches.changes_of(conn, ev)
        return changes_with_people(
            conn, ev, self._builtin, self.region, self.spam_policy, self.bounce_policy
        )

    def apply_window(self, window: Window) -> None:
        """The window's changes, then the waiting person-level requests it made applicable."""
        conn = window.conn
        events = window.events(self.where, payload=self.payload)
        if events:
            self.apply(conn, events)
        self._builtin = self._builtin or builtin_source_id(conn)
        ctx = Context(self._builtin, {}, self.changes_at, self.machine_policy)
        waiting = resolve_waiting(conn, window.bounds(), self.changes_at)
        if waiting:
            self._flush(conn, waiting, ctx)

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Apply the batch in log order, in blocks of ``BLOCK`` changes (idempotent)."""
        self._builtin = builtin_source_id(conn)
        ctx = Context(self._builtin, {}, self.changes_at, self.machine_policy)
        pending: list[Pending] = []
        for ev in events:
            if batches.is_record(ev, self._builtin):  # an import's chunk: set-based, alone
                self._flush(conn, pending, ctx)
                apply_record(conn, ev, ctx)
                continue
            pending.extend((ev, ch) for ch in self.changes_at(conn, ev))
            if len(pending) >= BLOCK:
                self._flush(conn, pending, ctx)
        self._flush(conn, pending, ctx)

    @staticmethod
    def _flush(conn: Connection, pending: list[Pending], ctx: Context) -> None:
        if not ctx.names:
            ctx.names = {s.id: s.name for s in source_store.list_all(conn)}
        apply_changes(conn, pending, ctx)
        pending.clear()
        if ctx.derived:
            log.append(conn, [log.Batch(ctx.builtin, now_ms(), ctx.derived)])
            ctx.derived = []

    def reset(self, conn: Connection) -> None:
        """Forget states and history (rebuilt from the log by ``engagehub reprocess consent``)."""
        conn.execute("DELETE FROM subscription_states")
        conn.execute("DELETE FROM subscription_history")
        conn.execute("DELETE FROM consent_person_requests")
