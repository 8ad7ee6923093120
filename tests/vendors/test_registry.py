"""The vendor registry: every module implements one interface, and the source kinds, webhook
routes, reference page and demo sources are all generated from it."""

from __future__ import annotations

import inspect
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from engagehub import vendors
from engagehub.demo.campaigns import SOURCES
from engagehub.docsgen.vendors import vendors_page
from engagehub.registry import routers
from engagehub.storage import Database
from engagehub.vendors import SOURCE_KINDS, VENDORS, crossengage, webhook_path
from engagehub.vendors.base import Context
from engagehub.vendors.common import text
from tests.conftest import assert_error, make_source

CASES = Path(__file__).resolve().parents[1] / "cases"
SAMPLE = {  # one recorded request per kind, parsed through the uniform parse(body, ctx)
    "segment": "segment/analytics_python_batch.json",
    "crossengage": "crossengage/api_two_events.json",
    "sendgrid": "sendgrid/event_webhook_batch.json",
    "twilio": "twilio/status_sms_delivered.json",
    "braze": "braze/http_connector_batch.json",
    "moengage": "moengage/streams_batch.json",
}


def _body(kind: str) -> bytes:
    raw = (CASES / SAMPLE[kind]).read_bytes()
    if kind == "twilio":  # recorded as form parameters
        return urlencode([tuple(p) for p in orjson.loads(raw)["params"]]).encode()
    return raw


@pytest.mark.parametrize("kind", list(VENDORS))
def test_every_vendor_module_has_the_one_interface(kind: str) -> None:
    vendor = VENDORS[kind]
    assert kind == vendor.KIND
    assert vendor.DESCRIPTION
    assert SOURCE_KINDS[kind] == vendor.DESCRIPTION
    assert list(inspect.signature(vendor.parse).parameters) == ["body", "ctx"]
    result = vendor.parse(_body(kind), Context(received_at=1_772_445_600_000))
    assert result.events, kind
    assert all(e.dedup_key for e in result.events)
    assert vendor.WEBHOOKS, kind  # every vendor's routes come from the registry
    for hook in vendor.WEBHOOKS:
        if hook.verify is not None:
            assert list(inspect.signature(hook.verify).parameters) == ["signed"]
        assert (hook.write_key is None) == ("{source}" in hook.path)  # named or keyed, never both
        assert hook.route.startswith(
            ("/webhooks/braze-currents/", f"/webhooks/{kind}/", f"/{kind}/", "/v1/")
        )


def test_source_kinds_are_the_registry() -> None:
    assert list(SOURCE_KINDS) == [
        "segment",
        "crossengage",
        "sendgrid",
        "twilio",
        "braze",
        "moengage",
    ]


def test_webhook_routes_are_generated_from_the_registry() -> None:
    declared = {(h.route, h.name) for _, h in vendors.webhooks()}
    served = {
        (r.path, r.name)
        for router in routers()
        for r in router.routes
        if isinstance(r, APIRoute)
        and "POST" in r.methods
        and (r.path.startswith("/webhooks/") or (r.path, r.name) in declared)
    }
    assert served == declared
    calls = ("batch", "track", "identify", "page", "screen", "group", "alias")
    assert {name for _, name in declared} == {
        *(f"segment_{c}" for c in calls),
        *(f"segment_{c[0]}" for c in calls),
        "crossengage_events",
        "sendgrid_events",
        "twilio_status",
        "twilio_inbound",
        "braze_currents",
        "moengage_events",
    }
    assert ("/crossengage/events", "crossengage_events") in declared
    assert ("/v1/t", "segment_t") in declared
    assert webhook_path("twilio_inbound", "x") == "/webhooks/twilio/x/inbound"
    with pytest.raises(KeyError):
        webhook_path("nope", "x")


def test_reference_page_and_demo_come_from_the_registry() -> None:
    page = vendors_page()
    for kind, vendor in VENDORS.items():
        assert f"| `{kind}` | {vendor.DESCRIPTION} |" in page
    for _, hook in vendors.webhooks():
        assert f"`POST {hook.route}`" in page
    assert {kind: f"demo-{kind}" for kind in VENDORS} == SOURCES


def test_one_text_helper_booleans_are_no_ids() -> None:
    assert text(True) is None
    assert text(False) is None
    assert text(0) == "0"
    assert text("") is None
    assert text(None) is None
    body = orjson.dumps(
        {
            "id": "u1",
            "events": [
                {
                    "event": "Message Sent",
                    "timestamp": "2026-03-02T10:00:00Z",
                    "properties": {"channel": "Email", "message_id": True, "email": "Ann@X.COM"},
                }
            ],
        }
    )
    (event,) = crossengage.parse(body, Context()).events
    assert event.message_id is None  # was "True" with CrossEngage's own copy of the helper
    assert event.properties["email"] == "ann@x.com"  # the shared ending lower-cases it


def test_webhook_answers_share_one_style(client: TestClient, db: Database) -> None:
    """Every JSON webhook answer says how many events it stored; a refused batch is 400."""
    make_source(db, "moe", "moengage", secret="moe-secret")
    make_source(db, "bz", "braze", secret="bz-secret")
    moe = _body("moengage")
    r = client.post(
        "/webhooks/moengage/moe", content=moe, headers={"Authorization": "Bearer moe-secret"}
    )
    assert r.status_code == 200
    assert r.json()["success"] is True
    assert r.json()["accepted"] == 6
    assert [x["index"] for x in r.json()["rejected"]] == [6, 7]  # the recording's bad ones
    braze = _body("braze")
    r = client.post(
        "/webhooks/braze-currents/bz", content=braze, headers={"Authorization": "Bearer bz-secret"}
    )
    parsed = VENDORS["braze"].parse(braze, Context())
    assert parsed.rejected  # the recording has bad events: Braze's policy refuses the batch
    details = assert_error(r, 400, "validation_failed")  # ...after storing the good ones
    assert details["accepted"] == len(parsed.events)
    # a bearer-token vendor is refused before its body is read: a huge body changes nothing
    huge = b"x" * (2 * 1024 * 1024)
    assert_error(client.post("/webhooks/moengage/moe", content=huge), 401, "invalid_signature")
