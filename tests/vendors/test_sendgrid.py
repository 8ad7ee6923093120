"""SendGrid: recorded payloads, and the signed-webhook check against generated keys."""

from __future__ import annotations

import time

import orjson
import pytest

from engagehub.errors import ConfigError, PayloadError, SignatureError
from engagehub.vendors import sendgrid
from tests.cases import CASES, check, result_dict
from tests.vendors.signing import SendGridSigner

CASE = CASES / "sendgrid" / "event_webhook_batch.json"


def test_recorded_batch() -> None:
    result = sendgrid.parse(CASE.read_bytes())
    check(CASE, result_dict(result))
    by_id = {e.dedup_key: e for e in result.events}
    assert by_id["sg-evt-004"].event == "Email Machine Opened"
    assert by_id["sg-evt-005"].event == "Email Opened"
    assert by_id["sg-evt-007"].properties["bounce_type"] == "hard"
    assert by_id["sg-evt-008"].properties["bounce_type"] == "blocked"
    assert by_id["sg-evt-009"].properties["drop_reason"] == "Bounced Address"
    assert by_id["sg-evt-012"].properties["subscription_group"] == 10
    assert by_id["sg-evt-001"].message_id == "m-100"
    assert by_id["sg-evt-007"].message_id == "aaa111"
    assert by_id["sg-evt-001"].contact == "ada@example.com"
    assert by_id["sg-evt-014"].event is None
    assert [r.index for r in result.rejected] == [14, 15]


def test_signature_accepts_what_sendgrid_signs() -> None:
    signer = SendGridSigner()
    body = CASE.read_bytes()
    now = int(time.time())
    headers = {k.lower(): v for k, v in signer.headers(body, now).items()}
    sendgrid.check_signature(headers, body, signer.public, now * 1000, 300)


def test_signature_rejects_tampering_wrong_keys_and_stale_timestamps() -> None:
    signer = SendGridSigner()
    body = CASE.read_bytes()
    now = int(time.time())
    headers = {k.lower(): v for k, v in signer.headers(body, now).items()}
    with pytest.raises(SignatureError):
        sendgrid.check_signature(
            headers, body.replace(b"processed", b"delivered"), signer.public, now * 1000, 300
        )
    with pytest.raises(SignatureError):
        sendgrid.check_signature(headers, body, SendGridSigner().public, now * 1000, 300)
    old = {k.lower(): v for k, v in signer.headers(body, now - 3600).items()}
    with pytest.raises(SignatureError) as info:
        sendgrid.check_signature(old, body, signer.public, now * 1000, 300)
    assert info.value.details["reason"] == "stale"
    with pytest.raises(SignatureError):
        sendgrid.check_signature({}, body, signer.public, now * 1000, 300)
    with pytest.raises(SignatureError):
        sendgrid.check_signature(headers, body, None, now * 1000, 300)
    with pytest.raises(ConfigError):
        sendgrid.check_signature(headers, body, "not base64 der!", now * 1000, 300)


def test_malformed_bodies() -> None:
    with pytest.raises(PayloadError) as info:
        sendgrid.parse(b'[{"event": "open",}]')
    assert info.value.details == {"position": 17, "near": '[{"event": "open",}]'}
    with pytest.raises(PayloadError):
        sendgrid.parse(orjson.dumps({"event": "open"}))


@pytest.mark.parametrize(
    "name", ["bounce_blocked_without_status", "processed_with_pool", "account_status_change"]
)
def test_published_payloads(name: str) -> None:
    """A real blocked bounce (no ``status``, with ``bounce_classification``), SendGrid's
    documented processed event with its IP ``pool`` object, and an account status change
    (sources: tests/cases/SOURCES.md)."""
    case = CASES / "sendgrid" / f"{name}.json"
    result = sendgrid.parse(case.read_bytes())
    check(case, result_dict(result))
    (ev,) = result.events
    if name == "processed_with_pool":
        assert (ev.event, ev.properties["ip_pool"], ev.properties["ip_pool_id"]) == (
            "Email Processed",
            "new_MY_test",
            210,
        )
    elif name == "account_status_change":  # about the account: no recipient, no message
        assert (ev.event, ev.properties) == (
            "Email Account Status Changed",
            {"account_status": "compliance_suspend"},
        )
        assert (ev.contact, ev.message_id) == (None, None)
    else:
        assert (ev.event, ev.properties["bounce_type"]) == ("Email Bounced", "blocked")
        assert ev.properties["bounce_classification"] == "Unclassified"
        assert "bounce_code" not in ev.properties
