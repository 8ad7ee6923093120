"""Timing heuristics for clicks: too soon after delivery, or one of many links in a burst.

Link scanners (Microsoft Safe Links, Proofpoint, Mimecast, Barracuda) fetch every link of a
message seconds after it arrives, several links within the same second; people do neither.
Both rules need the message's other events, so they run where the server commits events (the
log writer, before the append: :meth:`ClickTiming.flag`), and flag the click in its properties
like every other rule (``bot_click: true``, ``bot_click_reason: too_fast`` / ``burst``) so the
log, analytics (a flagged click counts as ``bot_clicked``), exports and destinations agree,
and a reprocess gives the same answer.

Per message the writer keeps a bounded memory: when it was delivered (else sent; the earliest
seen; a plain dict, since every delivery passes here) and its recent clicks (an
:class:`engagehub.lru.LRU`). A delivery it has not seen (an earlier process, another API
process) is read from the message's lifecycle (``analytics_messages``), once per message. Our own
redirect also puts the time we handed the message over on the click (``sent_at``), so its
clock never waits for the lifecycle. A click that arrives before its delivery is not judged by
the first rule; the burst rule needs no delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagehub.classify import CLICK_EVENTS
from engagehub.lru import LRU
from engagehub.model import IncomingEvent
from engagehub.storage.sqlin import chunks, where_in
from engagehub.taxonomy import get_taxonomy

MEMORY = 100_000
"""Messages remembered per process (about 200 bytes each)."""
_FALSE = (False, "false", "False", "FALSE", 0, "0")


def _anchors() -> frozenset[str]:
    """Canonical events whose time starts the "too fast" clock: deliveries, else sends."""
    return frozenset(
        name for name, ev in get_taxonomy().events.items() if ev.action in ("delivered", "sent")
    )


class ClickTiming:
    """The two rules over each committed group of events (one instance per writer)."""

    def __init__(self, min_seconds: float, burst_links: int, burst_seconds: float) -> None:
        self.min_ms = int(min_seconds * 1000)
        self.burst_links = burst_links
        self.burst_ms = int(burst_seconds * 1000)
        self.anchors = _anchors()
        self.delivered: dict[str, int | None] = {}
        """Message -> earliest delivery (else send) seen; None: looked up, none known. A plain
        dict (every delivery passes here), emptied when it reaches ``MEMORY``."""
        self.recent: LRU[str, list[tuple[int, str, str]]] = LRU(MEMORY)
        """Message -> (event time, url, dedup key) of its recent clicks, oldest first."""

    def flag(self, lookup: Any, batches: Sequence[Any]) -> None:
        """Note deliveries and flag clicks of these batches (``lookup(ids)`` -> {id: delivered
        ms} for messages not remembered); a cheap scan when a group holds no click."""
        clicks: list[IncomingEvent] = []
        anchors, delivered = self.anchors, self.delivered
        for batch in batches:
            for ev in batch.events:
                name = ev.event
                if name in anchors:
                    mid = ev.message_id
                    if mid:
                        old = delivered.get(mid)
                        if old is None or ev.event_time < old:
                            delivered[mid] = ev.event_time
                elif name in CLICK_EVENTS and ev.message_id:
                    clicks.append(ev)
        if len(delivered) >= MEMORY:
            delivered.clear()  # forgotten deliveries are looked up again, once each
        if not clicks or not (self.min_ms or self.burst_links):
            return
        if self.min_ms:
            unknown = sorted({str(e.message_id) for e in clicks} - delivered.keys())
            if unknown:
                found = lookup(unknown)
                for mid in unknown:
                    at = found.get(mid)
                    delivered[mid] = None if at is None else int(at)
        for ev in sorted(clicks, key=lambda e: e.event_time):
            self._judge(ev)

    def _judge(self, ev: IncomingEvent) -> None:
        assert ev.message_id is not None
        props = ev.properties
        url = str(props.get("url") or "")
        recent = self.recent.get(ev.message_id) or []
        if any(k == ev.dedup_key for _, _, k in recent):
            return  # a retried request: judged the first time
        recent = [c for c in recent if ev.event_time - c[0] <= self.burst_ms]
        recent.append((ev.event_time, url, ev.dedup_key))
        self.recent.put(ev.message_id, recent)
        if props.get("bot_click") is True or props.get("is_suspected_bot_click") in _FALSE:
            return  # already flagged, or the vendor looked and said no
        reason = None
        at = self.delivered.get(ev.message_id)
        own = props.get("sent_at")  # our own redirect knows when we sent the message
        if isinstance(own, int) and not isinstance(own, bool):
            at = own if at is None else min(at, own)
        if self.min_ms and at is not None and 0 <= ev.event_time - at < self.min_ms:
            reason = "too_fast"
        elif (
            self.burst_links
            and len(recent) >= self.burst_links
            and len({c[1] for c in recent}) >= self.burst_links
        ):
            reason = "burst"
        if reason is not None:
            props["bot_click"] = True
            props.setdefault("bot_click_reason", reason)


def delivered_at(conn: Any, ids: Sequence[str]) -> dict[str, int]:
    """When these messages were delivered (else sent), from their lifecycles."""
    out: dict[str, int] = {}
    for part in chunks(list(ids), 500):
        rows = conn.execute(
            "SELECT message_id, COALESCE(first_delivered, first_sent, first_left) "
            f"FROM analytics_messages WHERE {where_in('message_id', part)}",
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
