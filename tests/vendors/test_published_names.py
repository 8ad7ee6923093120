"""Every event name MoEngage and Segment publish today (tests/cases/published_names.yaml, with
the page each list comes from) is mapped: to a canonical event, or — for business events such as
Segment's E-commerce spec — explicitly kept as a named custom event. A name a vendor adds to its
docs fails here until the taxonomy says what it means."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from engagehub.taxonomy import get_taxonomy
from tests.cases import CASES

LISTS: list[dict[str, Any]] = yaml.safe_load((CASES / "published_names.yaml").read_text())
ITEMS = [(item["vendor"], item["what"], name) for item in LISTS for name in item["names"]]


def test_the_lists_cover_every_page_and_cite_it() -> None:
    assert {(i["vendor"], i["what"]) for i in LISTS} >= {
        ("moengage", "names"),
        ("moengage", "codes"),
        ("segment", "names"),
        ("segment", "custom"),
    }
    assert all(str(i["source"]).startswith("http") for i in LISTS)
    assert len(ITEMS) > 300


@pytest.mark.parametrize(("vendor", "what", "name"), ITEMS, ids=lambda v: str(v))
def test_every_published_name_is_mapped(vendor: str, what: str, name: str) -> None:
    taxonomy = get_taxonomy()
    resolved = taxonomy.resolve(vendor, name)
    if what == "custom":
        rule = taxonomy.vendors[vendor].rule(name)
        assert rule is not None, f"{vendor} {name!r} is not in the taxonomy"
        assert rule.custom, f"{vendor} {name!r} is not declared custom"
        assert resolved.event is None
        return
    rule = taxonomy.vendors[vendor].rule(name)
    if rule is not None and rule.custom:  # MoEngage's "Custom Event": the vendor's own catch-all
        return
    assert resolved.event is not None, f"{vendor} {name!r} maps to no canonical event"
    assert resolved.event in taxonomy.events


@pytest.mark.parametrize(
    ("vendor", "name", "event", "extra"),
    [
        ("moengage", "Email Spam Complained", "Email Marked as Spam", {}),
        ("moengage", "MOE_EMAIL_SPAM", "Email Marked as Spam", {}),
        ("moengage", "SMS Delivery Failed", "SMS Undelivered", {}),
        (
            "moengage",
            "Google Ads Audience Synced",
            "Audience Synced",
            {"destination": "google_ads"},
        ),
        ("moengage", "User Added to Control Group", "Control Group Entered", {"scope": "global"}),
        ("segment", "Push Notification Tapped", "Push Opened", {}),
        ("segment", "Application Foregrounded", "App Foregrounded", {}),
        ("segment", "Unsubscribed", "Email Unsubscribed", {}),
        ("segment", "Canvas Entered", "Journey Entered", {}),  # Braze's Segment source
        ("segment", "type:delete", "User Deleted", {}),
    ],
)
def test_meanings(vendor: str, name: str, event: str, extra: dict[str, Any]) -> None:
    resolved = get_taxonomy().resolve(vendor, name)
    assert resolved.event == event
    assert extra.items() <= resolved.set.items()
