"""Timing heuristics for clicks: too soon after delivery, or one of many links in a burst.

Link scanners (Microsoft Safe Links, Proofpoint, Mimecast, Barracuda) fetch every link of a
message seconds after it arrives, several links within the same second; people do neither.
Both rules need the message's other events, so they run where the server commits events (the
log writer, before the append: :meth:`ClickTiming.flag`), and flag the click in its properties
like every other rule (``bot_click: true``, ``bot_click_reason: too_fast`` / ``burst``) so the
log, analytics (a flagged click counts as ``bot_clicked``), exports and destinations agree,
and a reprocess gives the same answer.

Per message the writer keeps a bounded memory (:class:`engagehub.lru.LRU`): when it was
delivered (else sent; the earliest seen) and its recent clicks. A delivery it has not seen (an
earlier process, another API process) is read from the message's lifecycle
(``analytics_messages``), once per message. A click that arrives before its delivery is not
judged by the first rule; the burst rule needs no delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engagehub.classify import CLICK_EVENTS
from engagehub.lru import LRU
from engagehub.model import IncomingEvent
from engagehub.taxonomy import get_taxonomy

MEMORY = 100_000
"""Messages remembered per process (about 200 bytes each)."""
_FALSE = (False, "false", "False", "FALSE", 0, "0")


def _anchors() -> frozenset[str]:
    """Canonical events whose time starts the "too fast" clock: deliveries, else sends."""
    return frozenset(
        name for name, ev in get_taxonomy().events.items() if ev.action in ("delivered", "sent")
    )


@dataclass(slots=True)
class _Message:
    delivered: int | None = None
    looked_up: bool = False
    clicks: list[tuple[int, str, str]] = field(default_factory=list)
    """(event time, url, dedup key) of recent clicks, oldest first."""


class ClickTiming:
    """The two rules over each committed group of events (one instance per writer)."""

    def __init__(self, min_seconds: float, burst_links: int, burst_seconds: float) -> None:
        self.min_ms = int(min_seconds * 1000)
        self.burst_links = burst_links
        self.burst_ms = int(burst_seconds * 1000)
        self.anchors = _anchors()
        self.memory: LRU[str, _Message] = LRU(MEMORY)

    def flag(self, lookup: Any, batches: Sequence[Any]) -> None:
        """Note deliveries and flag clicks of these batches (``lookup(ids)`` -> {id: delivered
        ms} for messages not remembered); a cheap scan when a group holds no click."""
        clicks: list[IncomingEvent] = []
        for batch in batches:
            for ev in batch.events:
                name = ev.event
                if name in CLICK_EVENTS:
                    if ev.message_id:
                        clicks.append(ev)
                elif name in self.anchors and ev.message_id:
                    self._delivered(ev.message_id, ev.event_time)
        if not clicks or not (self.min_ms or self.burst_links):
            return
        unknown = sorted(
            {
                ev.message_id
                for ev in clicks
                if ev.message_id
                and self._state(ev.message_id).delivered is None
                and not self._state(ev.message_id).looked_up
            }
        )
        if unknown and self.min_ms:
            found = lookup(unknown)
            for mid in unknown:
                state = self._state(mid)
                state.looked_up = True
                if found.get(mid) is not None:
                    self._delivered(mid, int(found[mid]))
        for ev in sorted(clicks, key=lambda e: e.event_time):
            self._judge(ev)

    def _state(self, mid: str) -> _Message:
        state = self.memory.get(mid)
        if state is None:
            state = _Message()
            self.memory.put(mid, state)
        return state

    def _delivered(self, mid: str, at: int) -> None:
        state = self._state(mid)
        if state.delivered is None or at < state.delivered:
            state.delivered = at

    def _judge(self, ev: IncomingEvent) -> None:
        assert ev.message_id is not None
        props = ev.properties
        state = self._state(ev.message_id)
        url = str(props.get("url") or "")
        if any(k == ev.dedup_key for _, _, k in state.clicks):
            return  # a retried request: judged the first time
        state.clicks = [c for c in state.clicks if ev.event_time - c[0] <= self.burst_ms]
        state.clicks.append((ev.event_time, url, ev.dedup_key))
        if props.get("bot_click") is True or props.get("is_suspected_bot_click") in _FALSE:
            return  # already flagged, or the vendor looked and said no
        reason = None
        if (
            self.min_ms
            and state.delivered is not None
            and 0 <= ev.event_time - state.delivered < self.min_ms
        ):
            reason = "too_fast"
        elif self.burst_links and len({c[1] for c in state.clicks}) >= self.burst_links:
            reason = "burst"
        if reason is not None:
            props["bot_click"] = True
            props.setdefault("bot_click_reason", reason)


def delivered_at(conn: Any, ids: Sequence[str]) -> dict[str, int]:
    """When these messages were delivered (else sent), from their lifecycles."""
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        part = list(ids[start : start + 500])
        rows = conn.execute(
            "SELECT message_id, COALESCE(first_delivered, first_sent, first_left) "
            f"FROM analytics_messages WHERE message_id IN ({', '.join('?' * len(part))})",
            part,
        ).fetchall()
        out.update({str(mid): int(t) for mid, t in rows if t is not None})
    return out


def writer_hook(settings: Any) -> Any:
    """What the log writer calls before each group commit (None when both rules are off)."""
    if not (settings.bot_click_min_seconds or settings.bot_click_burst_links):
        return None
    timing = ClickTiming(
        settings.bot_click_min_seconds,
        settings.bot_click_burst_links,
        settings.bot_click_burst_seconds,
    )
    return lambda conn, batches: timing.flag(lambda ids: delivered_at(conn, ids), batches)
