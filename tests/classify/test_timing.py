"""The click timing rules: too soon after delivery, many links within a second; flags only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engagehub.classify.timing import ClickTiming
from engagehub.model import IncomingEvent

T = 1_767_000_000_000


@dataclass
class Batch:
    events: list[IncomingEvent]


@dataclass
class Lifecycles:
    """What ``analytics_messages`` would answer, and how often it was asked."""

    delivered: dict[str, int] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)

    def __call__(self, ids: list[str]) -> dict[str, int]:
        self.asked.append(list(ids))
        return {i: self.delivered[i] for i in ids if i in self.delivered}


def ev(name: str, t: int, mid: str = "m1", key: str = "", **props: Any) -> IncomingEvent:
    return IncomingEvent(
        dedup_key=key or f"{name}:{mid}:{t}:{props.get('url')}",
        event_time=t,
        raw="{}",
        event=name,
        vendor_event=name,
        message_id=mid,
        properties=dict(props),
    )


def click(t: int, url: str, mid: str = "m1", **props: Any) -> IncomingEvent:
    return ev("Email Link Clicked", t, mid, url=url, **props)


def reasons(events: list[IncomingEvent]) -> list[str | None]:
    return [e.properties.get("bot_click_reason") for e in events]


def test_a_click_within_seconds_of_delivery_is_a_scanners() -> None:
    timing = ClickTiming(5.0, 0, 1.0)
    lookup = Lifecycles()
    clicks = [click(T + 4_000, "https://a"), click(T + 6_000, "https://b")]
    timing.flag(lookup, [Batch([ev("Email Delivered", T), *clicks])])
    assert reasons(clicks) == ["too_fast", None]
    assert clicks[0].properties["bot_click"] is True
    assert "bot_click" not in clicks[1].properties
    assert lookup.asked == []  # the delivery was in the group: nothing to look up


def test_the_delivery_comes_from_the_lifecycle_once_per_message() -> None:
    timing = ClickTiming(5.0, 0, 1.0)
    lookup = Lifecycles({"m1": T})
    first = click(T + 1_000, "https://a")
    timing.flag(lookup, [Batch([first, click(T + 1_500, "https://b", mid="m2")])])
    later = click(T + 2_000, "https://c")
    timing.flag(lookup, [Batch([later])])
    assert reasons([first, later]) == ["too_fast", "too_fast"]
    assert lookup.asked == [["m1", "m2"]]  # m2 has none: not asked again either


def test_an_earlier_send_or_delivery_moves_the_clock_back() -> None:
    timing = ClickTiming(5.0, 0, 1.0)
    timing.flag(Lifecycles(), [Batch([ev("Email Sent", T + 10_000)])])
    timing.flag(Lifecycles(), [Batch([ev("Email Delivered", T)])])
    late = click(T + 12_000, "https://a")
    timing.flag(Lifecycles(), [Batch([late])])
    assert reasons([late]) == [None]  # 12 s after the delivery, though 2 s after "Sent"


def test_many_links_of_one_message_within_a_second() -> None:
    timing = ClickTiming(0, 3, 1.0)
    burst = [click(T + i * 300, f"https://l{i}") for i in range(4)]
    other = click(T + 100, "https://x", mid="m2")
    same = click(T + 250, "https://l0", key="again")  # the same link again is no new link
    timing.flag(Lifecycles(), [Batch([*burst[:2], other]), Batch([same, *burst[2:]])])
    assert reasons(burst) == [None, None, "burst", "burst"]
    assert reasons([other, same]) == [None, None]
    slow = [click(T + 10_000 + i * 1_500, f"https://s{i}") for i in range(4)]
    timing.flag(Lifecycles(), [Batch(slow)])
    assert reasons(slow) == [None, None, None, None]


def test_flags_are_kept_vendors_no_is_kept_and_retries_are_judged_once() -> None:
    timing = ClickTiming(5.0, 2, 1.0)
    vendor_no = click(T + 1_000, "https://a", is_suspected_bot_click=False)
    flagged = click(T + 1_100, "https://b", bot_click=True, bot_click_reason="head_request")
    timing.flag(Lifecycles(), [Batch([ev("Email Delivered", T), vendor_no, flagged])])
    assert reasons([vendor_no, flagged]) == [None, "head_request"]
    human = click(T + 60_000, "https://c", key="k1")
    timing.flag(Lifecycles(), [Batch([human])])
    retry = click(T + 60_000, "https://c", key="k1")
    timing.flag(Lifecycles(), [Batch([retry])])  # the writer retries a poisoned group alone
    assert reasons([human, retry]) == [None, None]


def test_both_rules_off() -> None:
    timing = ClickTiming(0, 0, 1.0)
    lookup = Lifecycles({"m1": T})
    clicks = [click(T + i, f"https://{i}") for i in range(5)]
    timing.flag(lookup, [Batch(clicks)])
    assert reasons(clicks) == [None] * 5
    assert lookup.asked == []


def test_our_redirect_carries_the_send_time() -> None:
    timing = ClickTiming(5.0, 0, 1.0)
    lookup = Lifecycles({"m1": T + 50_000})  # the lifecycle knows only a later event
    fast = click(T + 3_000, "https://a", sent_at=T)
    slow = click(T + 9_000, "https://b", sent_at=T)
    timing.flag(lookup, [Batch([fast, slow])])
    assert reasons([fast, slow]) == ["too_fast", None]
