"""The suppression processor: records every signal of the log and re-folds the contact points
it touched, so ``suppressions`` is always the (time, seq)-ordered result of all their signals.

Deliveries only keep the newest per contact point (``suppression_deliveries``): an older one
can only lift entries the newest lifts as well, and resets soft-bounce counts that the newest
resets too, so folding with the newest alone gives the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagehub.model import StoredEvent
from engagehub.settings import Settings
from engagehub.storage import bulk
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in
from engagehub.suppression.rules import WHERE, Rule, Signal, State, fold, signals_of
from engagehub.timeutil import now_ms

Key = tuple[str, str]
_SIGNAL_COLUMNS = (
    "contact",
    "channel",
    "seq",
    "kind",
    "reason",
    "detail",
    "source",
    "event_time",
    "expires_at",
    "message_id",
    "event_id",
    "recorded_at",
)
_ENTRY_COLUMNS = (
    "contact",
    "channel",
    "reason",
    "detail",
    "source",
    "event_time",
    "seq",
    "expires_at",
    "message_id",
    "updated_at",
)


class SuppressionProcessor:
    """Derived tables ``suppressions``, ``suppression_signals``, ``suppression_deliveries``."""

    name = "suppression"
    where: str | None = WHERE
    payload = True

    def __init__(self, settings: Settings) -> None:
        self.region = settings.default_region
        self.rule = Rule(
            settings.suppression_soft_bounce_count,
            settings.suppression_soft_bounce_days,
            settings.suppression_soft_bounce_suppress_days,
        )

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Store the batch's signals, then re-fold every contact point they touched."""
        found = [(ev, s) for ev in events for s in signals_of(ev, self.region)]
        if not found:
            return
        names = {s.id: s.name for s in source_store.list_all(conn)}
        now = now_ms()
        delivered: dict[Key, tuple[int, int]] = {}
        stored: list[tuple[Any, ...]] = []
        for ev, s in found:
            key = (s.contact, s.channel)
            if s.kind == "delivered":
                delivered[key] = max(delivered.get(key, (0, 0)), (s.event_time, s.seq))
                continue
            source = names.get(ev.source_id, str(ev.source_id))
            stored.append(
                (
                    s.contact,
                    s.channel,
                    s.seq,
                    s.kind,
                    s.reason,
                    s.detail,
                    source,
                    s.event_time,
                    s.expires_at,
                    s.message_id,
                    ev.event_id,
                    now,
                )
            )
        if stored:
            bulk.insert(
                conn,
                "suppression_signals",
                _SIGNAL_COLUMNS,
                sorted(stored),
                "ON CONFLICT (contact, channel, seq) DO NOTHING",
            )
        if delivered:
            newer = f"{conn.greatest}(suppression_deliveries.event_time, excluded.event_time)"
            bulk.insert(
                conn,
                "suppression_deliveries",
                ("contact", "channel", "event_time", "seq"),
                [(*k, *v) for k, v in sorted(delivered.items())],
                "ON CONFLICT (contact, channel) DO UPDATE SET "
                f"event_time = {newer}, seq = CASE WHEN excluded.event_time > "
                "suppression_deliveries.event_time THEN excluded.seq "
                "ELSE suppression_deliveries.seq END",
            )
        touched = {(s.contact, s.channel) for _, s in found}
        self._refold(conn, touched, now)

    def _refold(self, conn: Connection, keys: set[Key], now: int) -> None:
        """Recompute the state of ``keys`` that have signals (a contact point without any, as
        most delivered ones, has no entry to keep or delete)."""
        signals = self._signals(conn, keys)
        deliveries = self._deliveries(conn, {k for k in keys if k in signals})
        upserts: list[tuple[Any, ...]] = []
        deletes: list[Key] = []
        for key in sorted(keys):
            mine = signals.get(key)
            if not mine:
                continue
            if key in deliveries:
                t, seq = deliveries[key]
                mine.append(Signal(key[0], key[1], "delivered", t, seq))
            state: State | None = fold(mine, self.rule)
            if state is None:
                deletes.append(key)
                continue
            upserts.append(
                (
                    *key,
                    state.reason,
                    state.detail,
                    state.source,
                    state.event_time,
                    state.seq,
                    state.expires_at,
                    state.message_id,
                    now,
                )
            )
        if upserts:
            bulk.insert(
                conn,
                "suppressions",
                _ENTRY_COLUMNS,
                upserts,
                "ON CONFLICT (contact, channel) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _ENTRY_COLUMNS[2:]),
            )
        if deletes:
            conn.executemany("DELETE FROM suppressions WHERE contact = ? AND channel = ?", deletes)

    @staticmethod
    def _signals(conn: Connection, keys: set[Key]) -> dict[Key, list[Signal]]:
        out: dict[Key, list[Signal]] = {}
        contacts = sorted({c for c, _ in keys})
        for part in chunks(contacts):
            rows = conn.all(
                "SELECT contact, channel, seq, kind, reason, detail, source, event_time, "
                "expires_at, message_id FROM suppression_signals "
                f"WHERE {where_in('contact', part)}",
                part,
            )
            for r in rows:
                key = (r["contact"], r["channel"])
                if key not in keys:
                    continue
                out.setdefault(key, []).append(
                    Signal(
                        r["contact"],
                        r["channel"],
                        r["kind"],
                        int(r["event_time"]),
                        int(r["seq"]),
                        r["reason"],
                        r["detail"],
                        None if r["expires_at"] is None else int(r["expires_at"]),
                        r["message_id"],
                        r["source"],
                    )
                )
        return out

    @staticmethod
    def _deliveries(conn: Connection, keys: set[Key]) -> dict[Key, tuple[int, int]]:
        out: dict[Key, tuple[int, int]] = {}
        contacts = sorted({c for c, _ in keys})
        for part in chunks(contacts):
            rows = conn.all(
                "SELECT contact, channel, event_time, seq FROM suppression_deliveries "
                f"WHERE {where_in('contact', part)}",
                part,
            )
            for r in rows:
                key = (r["contact"], r["channel"])
                if key in keys:
                    out[key] = (int(r["event_time"]), int(r["seq"]))
        return out

    def reset(self, conn: Connection) -> None:
        """Forget everything (rebuilt from the log by ``engagehub reprocess suppression``)."""
        conn.execute("DELETE FROM suppressions")
        conn.execute("DELETE FROM suppression_signals")
        conn.execute("DELETE FROM suppression_deliveries")
