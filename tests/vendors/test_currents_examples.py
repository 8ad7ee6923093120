"""Every event type Braze publishes Currents examples for (Avro and Custom HTTP) is mapped."""

from __future__ import annotations

from pathlib import Path

import fastavro
import orjson
import pytest

from engagehub.model import IncomingEvent
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors import braze
from tests.cases import CASES

EXAMPLES = CASES / "braze" / "currents"
HTTP = sorted((EXAMPLES / "http").glob("*.json"))
AVRO = sorted((EXAMPLES / "avro").glob("*.avro"))


def _http(path: Path) -> IncomingEvent:
    result = braze.parse(orjson.dumps({"events": [orjson.loads(path.read_bytes())]}))
    assert not result.rejected, [r.body() for r in result.rejected]
    (event,) = result.events
    return event


def _avro(path: Path) -> list[IncomingEvent]:
    with path.open("rb") as fh:
        return [braze.normalize(path.stem, record) for record in fastavro.reader(fh)]  # type: ignore[arg-type]


def _mapped(event_type: str, event: IncomingEvent) -> None:
    """A canonical event, or a custom event under its own name (never the bare Braze type)."""
    rule = get_taxonomy().vendors["braze"].rule(event_type)
    assert rule is not None, f"{event_type} is not in taxonomy/data/vendors/braze.yaml"
    if rule.custom:
        assert event.event is None
        assert event.vendor_event not in (None, event_type), event_type
    else:
        assert event.event is not None, f"{event_type} resolved to no canonical event"
        assert event.event in get_taxonomy().events


def test_the_examples_cover_every_family() -> None:
    types = {p.stem for p in HTTP} | {p.stem for p in AVRO}
    assert len(HTTP) >= 90
    assert len(AVRO) >= 90
    for family in ("email", "sms", "whatsapp", "rcs", "line", "banner", "liveactivity"):
        assert any(f"messages.{family}." in t for t in types), family
    assert "users.behaviors.subscription.GlobalStateChange" in types


@pytest.mark.parametrize("path", HTTP, ids=lambda p: p.stem)
def test_every_http_example_is_mapped(path: Path) -> None:
    event = _http(path)
    _mapped(path.stem, event)
    assert event.dedup_key.startswith(path.stem + ":")


@pytest.mark.parametrize("path", AVRO, ids=lambda p: p.stem)
def test_every_avro_example_is_mapped(path: Path) -> None:
    events = _avro(path)
    assert events
    for event in events:
        _mapped(path.stem, event)


def test_consent_fields_as_braze_documents_them() -> None:
    glob = _http(EXAMPLES / "http" / "users.behaviors.subscription.GlobalStateChange.json")
    assert glob.event == "Channel Subscription Updated"
    assert (glob.channel, glob.contact) == ("email", "example@braze.com")
    assert glob.properties["subscription_status"] == "subscribed"
    group = _http(EXAMPLES / "http" / "users.behaviors.subscriptiongroup.StateChange.json")
    assert group.event == "Group Subscription Updated"
    assert group.properties["subscription_group"] == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    for channel in ("sms", "whatsapp"):
        inbound = _http(EXAMPLES / "http" / f"users.messages.{channel}.InboundReceive.json")
        assert inbound.properties["keyword_action"] == "subscribe"  # action "Subscribed"
        assert inbound.contact == "+1234567890"
    unsubscribe = _http(EXAMPLES / "http" / "users.messages.email.Unsubscribe.json")
    assert unsubscribe.event == "Email Unsubscribed"
    assert unsubscribe.properties["consent_effect"] == "none"


def test_new_channels_and_custom_events() -> None:
    expected = {
        "users.messages.rcs.Delivery": ("RCS Message Delivered", "rcs"),
        "users.messages.line.Send": ("LINE Message Sent", "line"),
        "users.messages.banner.Impression": ("Banner Viewed", "banner"),
        "users.messages.liveactivity.Send": ("Live Activity Sent", "live_activity"),
        "users.messages.featureflag.Impression": ("Feature Flag Viewed", "feature_flag"),
        "users.messages.email.Retry": ("Email Retried", "email"),
        "users.messages.webhook.Abort": ("Webhook Aborted", "webhook"),
    }
    for event_type, (name, channel) in expected.items():
        event = _http(EXAMPLES / "http" / f"{event_type}.json")
        assert (event.event, event.channel) == (name, channel), event_type
    custom = _http(EXAMPLES / "http" / "users.behaviors.CustomEvent.json")
    assert (custom.event, custom.vendor_event) == (None, "name")
    assert custom.dedup_key.startswith("users.behaviors.CustomEvent:")
