"""Every event name (and vendor property) listed in the product seeds is mapped by the taxonomy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engagehub.taxonomy import get_taxonomy

# The product documents, copied into the repository so a fresh clone tests alone; the copy is
# checked against shared/seeds whenever that folder sits beside the project.
SEEDS = Path(__file__).resolve().parents[1] / "data" / "seeds"
SHARED_SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def _seed(name: str) -> str:
    path = SEEDS / name
    assert path.exists(), f"seed copy {path} is missing"
    return path.read_text(encoding="utf-8")


def test_seed_copies_match_the_product_documents() -> None:
    if not SHARED_SEEDS.is_dir():
        pytest.skip(f"{SHARED_SEEDS} is not beside this clone; the repository copies are used")
    shared = {p.name: p.read_bytes() for p in SHARED_SEEDS.glob("*.md")}
    ours = {p.name: p.read_bytes() for p in SEEDS.glob("*.md")}
    stale = sorted(n for n in shared.keys() | ours.keys() if shared.get(n) != ours.get(n))
    assert not stale, f"tests/data/seeds differs from {SHARED_SEEDS} for {stale}: copy them again"


def _table_first_column(text: str, start: str, stop: str | None) -> list[str]:
    section = text.split(start, 1)[1]
    if stop:
        section = section.split(stop, 1)[0]
    names = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or not cells[0] or set(cells[0]) <= {"-", " "}:
            continue
        if cells[0] in ("Event", "Name"):
            continue
        names.append(cells[0])
    return names


def segment_names() -> list[str]:
    return _table_first_column(_seed("segment-engage-events-source.md"), "## Tracked events", None)


def moengage_names() -> list[str]:
    text = _seed("moengage-source.md")
    return _table_first_column(text, "## Events", "## MoEngage Event Properties")


def braze_names() -> list[str]:
    return sorted(
        set(
            re.findall(
                r"users\.[A-Za-z]+(?:\.[A-Za-z]+)+",
                _seed("braze-currents-message-engagement-events.md"),
            )
        )
    )


def crossengage_names() -> list[str]:
    section = _seed("crossengage-outbound-events.md").split("### Events", 1)[1].split("{%", 1)[0]
    return [
        line[2:].replace("\\_", "_").strip()
        for line in section.splitlines()
        if line.startswith("* ")
    ]


def test_seed_lists_are_read() -> None:
    """Guard against a parser that silently reads nothing."""
    assert len(segment_names()) == 38
    assert len(moengage_names()) == 87
    assert len(braze_names()) == 33
    assert len(crossengage_names()) == 8


@pytest.mark.parametrize(
    ("vendor", "names"),
    [
        ("segment", segment_names()),
        ("moengage", moengage_names()),
        ("braze", braze_names()),
        ("crossengage", crossengage_names()),
    ],
)
def test_every_seed_event_is_mapped(vendor: str, names: list[str]) -> None:
    taxonomy = get_taxonomy()
    mapping = taxonomy.vendors[vendor]
    unmapped = []
    for name in names:
        resolved = taxonomy.resolve(vendor, name)
        explicit = mapping.rule(name)
        if resolved.event is None and not (explicit is not None and explicit.custom):
            unmapped.append(name)
    assert not unmapped, f"{vendor} names with no canonical event: {unmapped}"


def test_segment_engage_names_are_canonical() -> None:
    """The Engage Events Source names are the canonical names themselves."""
    taxonomy = get_taxonomy()
    for name in segment_names():
        assert name in taxonomy.events, name


def test_canonical_events_are_consistent() -> None:
    taxonomy = get_taxonomy()
    pairs = [(e.channel, e.action) for e in taxonomy.events.values()]
    assert len(pairs) == len(set(pairs)), "one canonical event per channel x action"
    for event in taxonomy.events.values():
        assert event.channel in taxonomy.channels, event
        assert event.description, event
    for mapping in taxonomy.vendors.values():
        for name, rule in mapping.rules.items():
            for target in {rule.event, *rule.by_channel.values()} - {None}:
                assert target in taxonomy.events, f"{mapping.vendor}:{name} -> {target}"
            for key in rule.set:
                assert key in taxonomy.properties, f"{mapping.vendor}:{name} sets {key}"
        for target in mapping.properties.values():
            assert target in taxonomy.properties, f"{mapping.vendor} renames to {target}"
    for target in taxonomy.property_aliases.values():
        assert target in taxonomy.properties, target


def _braze_fields() -> set[str]:
    text = _seed("braze-currents-message-engagement-events.md")
    fields: set[str] = set()
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        fields.update(re.findall(r'^\s*"(\w+)"\s*:', block, re.M))
    return fields


def test_every_braze_field_maps_to_a_canonical_property() -> None:
    taxonomy = get_taxonomy()
    braze = taxonomy.vendors["braze"]
    fields = _braze_fields()
    assert {"dispatch_id", "message_variation_id", "action", "message_body"} <= fields
    missing = [
        f
        for f in fields
        if f not in braze.envelope
        and taxonomy.rename("braze", {f: 1}).keys() - taxonomy.properties.keys()
    ]
    assert not missing, missing


def test_every_moengage_property_maps_to_a_canonical_property() -> None:
    taxonomy = get_taxonomy()
    names = _table_first_column(_seed("moengage-source.md"), "## MoEngage Event Properties", "##")
    assert "Campaign Id" in names
    assert "Exit Reason" in names
    missing = [
        n for n in names if taxonomy.rename("moengage", {n: 1}).keys() - taxonomy.properties.keys()
    ]
    assert not missing, missing


def test_every_crossengage_property_maps_to_a_canonical_property() -> None:
    taxonomy = get_taxonomy()
    text = _seed("crossengage-outbound-events.md")
    names = re.findall(r"<tr><td>(\w+)</td>", text)
    assert "User_id" in names
    assert "message_id" in names
    mapping = taxonomy.vendors["crossengage"]
    missing = [
        n
        for n in names
        if n not in mapping.envelope
        and taxonomy.rename("crossengage", {n: 1}).keys() - taxonomy.properties.keys()
    ]
    assert not missing, missing


@pytest.mark.parametrize(
    ("vendor", "name", "channel", "expected"),
    [
        ("crossengage", "Message Sent", "email", "Email Sent"),
        ("crossengage", "Message hard_bounced", "sms", "SMS Undelivered"),
        ("crossengage", "Message Viewed", None, "Message Viewed"),
        ("moengage", "Notification Clicked iOS", None, "Push Opened"),
        ("braze", "users.messages.email.SoftBounce", None, "Email Soft Bounced"),
        ("segment", "Email Clicked", None, "Email Link Clicked"),
        ("segment", "users.messages.sms.Delivery", None, "SMS Delivered"),
        ("segment", "email opened", None, "Email Opened"),
    ],
)
def test_resolution(vendor: str, name: str, channel: str | None, expected: str) -> None:
    assert get_taxonomy().resolve(vendor, name, channel).event == expected


def test_platform_and_bounce_type_come_from_the_mapping() -> None:
    taxonomy = get_taxonomy()
    assert taxonomy.resolve("moengage", "In-App Shown Windows").set == {"platform": "windows"}
    assert taxonomy.resolve("braze", "users.messages.email.Bounce").set == {"bounce_type": "hard"}


def test_unknown_and_custom_names_are_unmapped() -> None:
    taxonomy = get_taxonomy()
    assert taxonomy.resolve("segment", "Order Completed").event is None
    assert taxonomy.resolve("moengage", "Custom Event").event is None
