"""Erasure requests vendors send through the log: recorded for an operator, or honoured at once.

Braze streams ``users.UserDeleteRequest`` when someone deletes a user there, Segment forwards a
``delete`` call for every deletion regulation, and tools track "User Deleted": all arrive as the
canonical event "User Deleted". The ``erasure_requests`` processor records each one in
``privacy_vendor_requests`` (no identifier there: the row points at the event). What happens
next is the setting ``ENGAGEHUB_PRIVACY_VENDOR_ERASURE``:

- ``record`` (default): the request waits for an operator — ``engagehub people requests``,
  ``GET /api/people/erasure-requests`` — who confirms it (an erasure of the person the event
  names, exactly as ``people erase``) or dismisses it. A forged or mistaken deletion in a
  vendor's stream can then never wipe a customer's data by itself.
- ``erase``: the processor requests the erasure itself, in the same round (suppressed at once;
  the erasure service removes the person, this event included) — for sources that sign or
  authenticate with a secret (Braze, MoEngage...). Requests from ``segment`` sources still wait
  for an operator: a Segment write key is public in every web page that loads analytics.js, so
  anyone could send ``analytics.track("User Deleted")`` in someone's name.
- ``ignore``: nothing is recorded.

Our own "User Deleted" notices never enter the log (erasure hands them to destinations
directly), so an erasure never triggers itself.
"""

from __future__ import annotations

from typing import Any

from engagehub.errors import NotFound, PayloadError
from engagehub.model import StoredEvent
from engagehub.ops.metrics import Lag
from engagehub.privacy import erase
from engagehub.processing.window import Window
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms

EVENT = "User Deleted"
STATES = ("pending", "erasing", "dismissed", "gone")
_COLUMNS = "id, seq, source_id, vendor_event, state, erasure_id, decided_by, created_at, decided_at"
_WHERE = f"event = '{EVENT}' AND source_id NOT IN (SELECT id FROM sources WHERE kind = 'engagehub')"


def subject_key(ev: StoredEvent) -> str | None:
    """The identifier a deletion request names: the user id, else the vendor's id, else any."""
    for value in (ev.user_id, ev.properties.get("braze_id"), ev.anonymous_id, ev.contact):
        if isinstance(value, str) and value.strip():
            return value
    return None


class ErasureRequestProcessor:
    """Derived table ``privacy_vendor_requests`` (decisions are kept across ``reprocess``)."""

    name = "erasure_requests"

    def __init__(self, settings: Settings) -> None:
        self.policy = settings.privacy_vendor_erasure
        self.region = settings.default_region

    def apply_window(self, window: Window) -> None:
        """Record each vendor deletion request of the window once; honour it when set to."""
        if self.policy == "ignore":
            return
        conn = window.conn
        for ev in window.events(_WHERE):
            rid = "vr_" + ev.event_id
            cur = conn.execute(
                "INSERT INTO privacy_vendor_requests (id, seq, source_id, vendor_event, state, "
                "created_at) VALUES (?, ?, ?, ?, 'pending', ?) ON CONFLICT (id) DO NOTHING",
                (rid, ev.seq, ev.source_id, ev.vendor_event, now_ms()),
            )
            if self.policy == "erase" and (cur.rowcount or 0) > 0 and _trusted(conn, ev):
                _erase(conn, rid, ev, f"source:{ev.source_id}", self.region)

    def reset(self, conn: Connection) -> None:
        """Nothing to forget: rows are keyed by event and hold decisions, not derived state."""


PUBLIC_KEY_KINDS = frozenset(("segment",))
"""Source kinds whose credential may be public (browser write keys): never erased unconfirmed."""


def _trusted(conn: Connection, ev: StoredEvent) -> bool:
    kind = conn.scalar("SELECT kind FROM sources WHERE id = ?", (ev.source_id,))
    return kind is not None and str(kind) not in PUBLIC_KEY_KINDS


def _erase(conn: Connection, rid: str, ev: StoredEvent, by: str, region: str) -> dict[str, Any]:
    key = subject_key(ev)
    if key is None:
        raise PayloadError("the deletion request names nobody", id=rid, seq=ev.seq)
    reason = f"vendor request {ev.vendor_event or EVENT} (log position {ev.seq})"
    job = erase.request(conn, key, reason, by, region)
    conn.execute(
        "UPDATE privacy_vendor_requests SET state = 'erasing', erasure_id = ?, decided_by = ?, "
        "decided_at = ? WHERE id = ?",
        (job["id"], by, now_ms(), rid),
    )
    return job


def listing(conn: Connection, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Requests, newest first; ``state`` filters (``pending`` is what waits for a decision)."""
    if state is not None and state not in STATES:
        raise PayloadError(
            f"unknown state {state!r}; expected one of {', '.join(STATES)}",
            field="state",
            value=state,
        )
    where, params = ("WHERE state = ?", [state]) if state else ("", [])
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM privacy_vendor_requests {where} "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        (*params, limit),
    )
    return [_public(r) for r in rows]


def get(conn: Connection, rid: str) -> dict[str, Any]:
    """One request's public state."""
    row = conn.one(f"SELECT {_COLUMNS} FROM privacy_vendor_requests WHERE id = ?", (rid,))
    if row is None:
        raise NotFound(f"no erasure request with id {rid!r}", id=rid)
    return _public(row)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "created_at": format_ts(row["created_at"]),
        "decided_at": format_ts(row["decided_at"]) if row["decided_at"] else None,
    }


def decide(conn: Connection, rid: str, action: str, by: str, region: str) -> dict[str, Any]:
    """``confirm`` (request the erasure) or ``dismiss`` a pending request."""
    if action not in ("confirm", "dismiss"):
        raise PayloadError(
            f"unknown action {action!r}; expected confirm or dismiss", field="action", value=action
        )
    with conn.transaction():
        found = get(conn, rid)
        if found["state"] != "pending":
            raise PayloadError(
                f"erasure request {rid} is {found['state']}, not pending",
                id=rid,
                state=found["state"],
            )
        events = log.read_range(conn, int(found["seq"]) - 1, int(found["seq"]))
        if not events:  # the person was erased meanwhile: nothing left to erase
            state, extra = "gone", None
        elif action == "confirm":
            job = _erase(conn, rid, events[0], by, region)
            return {**get(conn, rid), "erasure": job}
        else:
            state, extra = "dismissed", None
        conn.execute(
            "UPDATE privacy_vendor_requests SET state = ?, erasure_id = ?, decided_by = ?, "
            "decided_at = ? WHERE id = ?",
            (state, extra, by, now_ms(), rid),
        )
    return get(conn, rid)


def pending_lag(conn: Connection) -> dict[str, Lag]:
    """Requests waiting for a decision and the age of the oldest, for ``/metrics`` (an erasure
    request has a legal deadline: alert on it)."""
    row = conn.one(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM privacy_vendor_requests "
        "WHERE state = 'pending'"
    )
    count = int(row["n"]) if row else 0
    oldest = row["oldest"] if row else None
    age = max(0.0, (now_ms() - int(oldest)) / 1000) if count and oldest is not None else 0.0
    return {"vendor_erasure_requests": Lag(count, age)}
