"""Property: any permutation, duplication and windowing of the same events gives the same
lifecycles, rollups, conversions and stats (both backends)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagehub.analytics import service, stats
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.model import IncomingEvent
from engagehub.processing import reset
from engagehub.processing.log_index import LogIndex
from engagehub.storage import Database
from engagehub.storage.base import Connection
from tests.analytics.helpers import T0, H, clear_log, ev, feed, snapshot, source_id

KINDS = [
    "Email Sent",
    "Email Delivered",
    "Email Deferred",
    "Email Opened",
    "Email Machine Opened",
    "Email Link Clicked",
    "Email Soft Bounced",
    "Email Bounced",
    "Email Unsubscribed",
    "Email Marked as Spam",
]

message_event = st.tuples(
    st.integers(0, 2),  # message
    st.sampled_from(KINDS),
    st.integers(0, 96),  # half hours after T0
    st.sampled_from(["https://x.test/a", "https://x.test/b"]),
    st.booleans(),  # carries the campaign and variation
    st.sampled_from(["ours", "provider", "both"]),  # which ids the vendor reports
)
order_event = st.tuples(st.integers(0, 2), st.integers(0, 96), st.sampled_from(["SPRING", "X"]))


def build(msgs: list[tuple[Any, ...]], orders: list[tuple[Any, ...]]) -> list[IncomingEvent]:
    out = []
    for i, (m, kind, half, url, tagged, ids) in enumerate(msgs):
        extra: dict[str, Any] = {"url": url} if kind == "Email Link Clicked" else {}
        if ids == "both":
            extra["provider_message_id"] = f"prov-{m}"
        if kind.endswith("Bounced"):
            extra["bounce_reason"] = f"reason {half % 3}"
        out.append(
            ev(
                f"e{i}",
                kind,
                T0 + half * H // 2,
                f"prov-{m}" if ids == "provider" else f"m{m}",
                "c1" if tagged else None,
                user=f"u{m}",
                variation_id="B" if tagged and m == 1 else None,
                **extra,
            )
        )
    for i, (u, half, coupon) in enumerate(orders):
        out.append(ev(f"o{i}", "Order Completed", T0 + half * H // 2, user=f"u{u}", coupon=coupon))
    return out


def observe(conn: Connection) -> Any:
    return snapshot(conn), stats.campaign_stats(conn, "c1") if conn.scalar(
        "SELECT 1 FROM analytics_campaign_names WHERE campaign_id = 'c1'"
    ) else None


def test_permutations_duplicates_and_windows_agree(db: Database) -> None:
    sid = source_id(db)
    with db.session() as conn:
        service.add_goal(conn, "c1", "Order Completed", "properties.coupon == 'SPRING'", "24h")

        @settings(
            max_examples=20 if conn.dialect == "sqlite" else 8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            msgs=st.lists(message_event, min_size=1, max_size=14),
            orders=st.lists(order_event, max_size=4),
            data=st.data(),
        )
        def check(msgs: list[Any], orders: list[Any], data: st.DataObject) -> None:
            events = build(msgs, orders)
            runs = []
            for attempt in range(2):
                clear_log(conn)
                reset(conn, LogIndex())
                reset(conn, AnalyticsProcessor())
                if attempt == 0:
                    feed(conn, sid, events)
                else:
                    shuffled = data.draw(st.permutations(events))
                    dupes = data.draw(st.lists(st.sampled_from(events), max_size=5))
                    window = data.draw(st.integers(1, 6))
                    mixed = data.draw(st.permutations(shuffled + dupes))
                    # several requests: a vendor retry of an event lands in a later batch
                    cut = data.draw(st.integers(0, len(mixed)))
                    feed(conn, sid, mixed[:cut], window)
                    feed(conn, sid, mixed[cut:], window)
                runs.append(observe(conn))
            assert runs[1] == runs[0]

        check()
