"""The dashboard's test events: each kind's body is one the vendor's real route accepts, signed
the vendor's way, and the route stores what the dashboard's in-process parse stores."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient

from engagehub.ingest import probe
from engagehub.storage import Database
from engagehub.timeutil import now_ms
from engagehub.vendors import SOURCE_KINDS
from tests.conftest import make_source
from tests.ingest.test_webhooks import stored
from tests.vendors.signing import SendGridSigner, basic, bearer, twilio_headers

BEARER = "probe-bearer-token-0123456789"
TWILIO = "probe-twilio-auth-token-0123456789"


def _post(client: TestClient, db: Database, kind: str, body: bytes) -> int:
    """POST the body to the kind's ingest route with the vendor's authentication."""
    if kind == "sendgrid":
        signer = SendGridSigner()
        make_source(db, "p", kind, secret=signer.public)
        r = client.post("/webhooks/sendgrid/p", content=body, headers=signer.headers(body))
    elif kind == "twilio":
        make_source(db, "p", kind, secret=TWILIO)
        path = "/webhooks/twilio/p/status"
        headers = twilio_headers(TWILIO, "http://testserver" + path, parse_qsl(body.decode()))
        r = client.post(path, content=body, headers=headers)
    elif kind in ("braze", "moengage"):
        make_source(db, "p", kind, secret=BEARER)
        path = "/webhooks/braze-currents/p" if kind == "braze" else "/webhooks/moengage/p"
        r = client.post(path, content=body, headers=bearer(BEARER))
    elif kind == "crossengage":
        _, key = make_source(db, "p", kind)
        headers = {"X-XNG-AuthToken": key, "X-XNG-ApiVersion": "1"}
        r = client.post("/crossengage/events", content=body, headers=headers)
    else:
        _, key = make_source(db, "p", kind)
        r = client.post("/v1/track", content=body, headers=basic(key))
    assert r.status_code < 300, r.text
    return r.status_code


@pytest.mark.parametrize("kind", sorted(SOURCE_KINDS))
def test_test_event_body_is_what_the_vendor_route_accepts(
    kind: str, client: TestClient, db: Database
) -> None:
    received = now_ms()
    body = probe.body_of(kind, received, tag="fixed")
    _post(client, db, kind, body)
    [event] = stored(db)
    [parsed] = probe.parse(kind, body, received, "US", 1 << 20).events
    assert (event.event, event.vendor_event, event.channel, event.dedup_key) == (
        parsed.event,
        parsed.vendor_event,
        parsed.channel,
        parsed.dedup_key,
    )
    if kind in ("segment", "crossengage", "braze", "moengage"):
        assert event.vendor_event == probe.EVENT


@pytest.mark.parametrize("kind", sorted(SOURCE_KINDS))
def test_every_test_event_is_new(kind: str) -> None:
    """Two presses store two events: each body has its own vendor id."""
    first, second = (probe.sample(kind, now_ms(), "US", 1 << 20) for _ in range(2))
    assert len(first.events) == len(second.events) == 1
    assert not first.rejected
    assert first.events[0].dedup_key != second.events[0].dedup_key


def test_unknown_kind_is_named() -> None:
    with pytest.raises(ValueError, match="'engagehub'"):
        probe.body_of("engagehub", now_ms())
