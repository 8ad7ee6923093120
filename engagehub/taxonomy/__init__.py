"""The canonical taxonomy, loaded once from data files: names are data, never branched on in code.

``data/events.yaml`` lists canonical events (channel x action) and canonical properties;
``data/vendors/<vendor>.yaml`` maps every vendor event name and property spelling onto them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from engagehub import yamltext

__all__ = [
    "MESSAGE_CHANNELS",
    "CanonicalEvent",
    "Resolved",
    "Taxonomy",
    "VendorMapping",
    "get_taxonomy",
]

# Segment sources may carry any vendor's names (MoEngage and Braze forward into Segment).
_SEGMENT_FALLBACKS = ("moengage", "braze", "crossengage", "sendgrid", "twilio")
MESSAGE_CHANNELS = frozenset(
    (
        "email",
        "sms",
        "whatsapp",
        "push",
        "in_app",
        "content_card",
        "news_feed",
        "webhook",
        "rcs",
        "line",
        "banner",
        "live_activity",
        "feature_flag",
    )
)


@dataclass(frozen=True, slots=True)
class CanonicalEvent:
    """One canonical event: its name, channel, action and meaning."""

    name: str
    channel: str
    action: str
    description: str


@dataclass(frozen=True, slots=True)
class Rule:
    """How one vendor name becomes a canonical event."""

    event: str | None
    by_channel: dict[str, str] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    custom: bool = False
    """Explicitly not an engagement event (a vendor's custom events keep their own name)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """The canonical event a vendor name resolved to (``event`` None when unmapped)."""

    event: str | None
    channel: str | None
    set: dict[str, Any]


_UNMAPPED = Resolved(None, None, {})


@dataclass(slots=True)
class VendorMapping:
    """One vendor's names and property spellings."""

    vendor: str
    seed: str | None
    rules: dict[str, Rule]
    properties: dict[str, str]
    envelope: tuple[str, ...] = ()
    """Vendor fields read into log columns (event id, time) instead of properties."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Other spellings of a name (MoEngage event codes) -> the name whose rule applies."""
    folded: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folded = {name.casefold(): name for name in self.rules}

    def rule(self, name: str) -> Rule | None:
        """Exact match first, then a case-insensitive one, then an alias's (one hop)."""
        found = self._direct(name)
        if found is None and name in self.aliases:
            found = self._direct(self.aliases[name])
        return found

    def _direct(self, name: str) -> Rule | None:
        found = self.rules.get(name)
        if found is None:
            key = self.folded.get(name.casefold())
            found = self.rules.get(key) if key is not None else None
        return found


class Taxonomy:
    """Canonical events plus vendor mappings, with lookups used by every parser."""

    def __init__(self, doc: dict[str, Any], vendors: dict[str, VendorMapping]) -> None:
        self.version: int = doc["version"]
        self.channels: dict[str, str] = doc["channels"]
        self.channel_aliases: dict[str, str] = {
            k.casefold(): v for k, v in doc["channel_aliases"].items()
        }
        self.properties: dict[str, str] = doc["properties"]
        self.property_aliases: dict[str, str] = doc["property_aliases"]
        self.events: dict[str, CanonicalEvent] = {
            e["name"]: CanonicalEvent(e["name"], e["channel"], e["action"], e["description"])
            for e in doc["events"]
        }
        self._folded_events = {name.casefold(): name for name in self.events}
        self.vendors = vendors
        self._renames: dict[str, dict[str, str]] = {
            name: {**self.property_aliases, **m.properties} for name, m in vendors.items()
        }
        self._cache: dict[tuple[str, str, str | None], Resolved] = {}

    def channel(self, value: object) -> str | None:
        """A vendor's channel value as a canonical channel name, or None."""
        if not isinstance(value, str):
            return None
        return self.channel_aliases.get(value.strip().casefold())

    def resolve(self, vendor: str, name: str, channel: str | None = None) -> Resolved:
        """Canonical event for a vendor event name; ``channel`` picks among by-channel rules."""
        key = (vendor, name, channel)
        found = self._cache.get(key)
        if found is None:
            found = self._resolve(vendor, name, channel)
            if len(self._cache) < 100_000:
                self._cache[key] = found
        return found

    def _resolve(self, vendor: str, name: str, channel: str | None) -> Resolved:
        order = [vendor]
        if vendor == "segment":
            order.append("__canonical__")
            order.extend(_SEGMENT_FALLBACKS)
        for candidate in order:
            if candidate == "__canonical__":
                canonical = self._folded_events.get(name.casefold())
                if canonical is not None:
                    return self._resolved(canonical, {})
                continue
            mapping = self.vendors.get(candidate)
            rule = mapping.rule(name) if mapping else None
            if rule is None:
                continue
            if rule.custom:
                return _UNMAPPED
            event = rule.by_channel.get(channel, rule.event) if channel else rule.event
            if event is None:
                return _UNMAPPED
            return self._resolved(event, rule.set)
        return _UNMAPPED

    def _resolved(self, event: str, extra: dict[str, Any]) -> Resolved:
        chan = self.events[event].channel
        return Resolved(event, None if chan == "message" else chan, extra)

    def rename(
        self, vendor: str, properties: dict[str, Any], owned: bool = False
    ) -> dict[str, Any]:
        """Vendor property names as canonical names; names we do not know are kept as sent.

        ``owned``: the caller's own fresh dict (just decoded), returned as is when nothing
        needs renaming instead of copied."""
        renames = self._renames.get(vendor, self.property_aliases)
        if renames.keys().isdisjoint(properties):
            return properties if owned else dict(properties)
        return {renames.get(k, k): v for k, v in properties.items()}

    def vendor_names(self) -> dict[str, dict[str, list[str]]]:
        """Canonical event -> vendor -> the vendor names that map to it."""
        out: dict[str, dict[str, list[str]]] = {name: {} for name in self.events}
        for vendor, mapping in self.vendors.items():
            for name, rule in mapping.rules.items():
                targets = {rule.event, *rule.by_channel.values()} - {None}
                for target in sorted(t for t in targets if t is not None):
                    out[target].setdefault(vendor, []).append(name)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The whole taxonomy as JSON-ready data (``GET /api/taxonomy``)."""
        names = self.vendor_names()
        return {
            "version": self.version,
            "channels": self.channels,
            "properties": self.properties,
            "events": [
                {
                    "name": e.name,
                    "channel": e.channel,
                    "action": e.action,
                    "description": e.description,
                    "vendor_names": names[e.name],
                }
                for e in self.events.values()
            ],
            "custom": {
                vendor: sorted(n for n, r in m.rules.items() if r.custom)
                for vendor, m in self.vendors.items()
                if any(r.custom for r in m.rules.values())
            },
        }

    def column_channel(self, resolved: Resolved, hint: object = None) -> str | None:
        """The log's ``channel``: the message channel of the event, else the sender's hint."""
        if resolved.channel in MESSAGE_CHANNELS:
            return resolved.channel
        return self.channel(hint) or resolved.channel


def _rule(value: Any) -> Rule:
    if value is None:
        return Rule(None, custom=True)
    if isinstance(value, str):
        return Rule(value)
    return Rule(
        value.get("event", value.get("default")),
        by_channel=dict(value.get("by_channel", {})),
        set=dict(value.get("set", {})),
    )


def _read_yaml(path: Any) -> dict[str, Any]:
    data = yamltext.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


@lru_cache(maxsize=1)
def get_taxonomy() -> Taxonomy:
    """The taxonomy, read from the package data once per process."""
    root = resources.files("engagehub.taxonomy") / "data"
    doc = _read_yaml(root / "events.yaml")
    vendors: dict[str, VendorMapping] = {}
    for entry in sorted((root / "vendors").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = _read_yaml(entry)
        vendors[data["vendor"]] = VendorMapping(
            vendor=data["vendor"],
            seed=data.get("seed"),
            rules={name: _rule(v) for name, v in (data.get("events") or {}).items()},
            properties=dict(data.get("properties") or {}),
            envelope=tuple(data.get("envelope") or ()),
            aliases=dict(data.get("aliases") or {}),
        )
    return Taxonomy(doc, vendors)
