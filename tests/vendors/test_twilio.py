"""Twilio: recorded callbacks, keywords, and signatures checked against the official library."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from engagehub.errors import SignatureError
from engagehub.model import ParseResult
from engagehub.vendors import twilio
from tests.cases import case_files, check, result_dict

TOKEN = "12345678901234567890123456789012"
RECEIVED = 1_772_445_600_000


@pytest.mark.parametrize("case", case_files("twilio"), ids=lambda p: p.stem)
def test_recorded_callbacks(case: Path) -> None:
    spec = orjson.loads(case.read_bytes())
    params = dict(spec["params"])
    query = dict(q.split("=", 1) for q in spec["query"].split("&") if q)
    if spec["kind"] == "status":
        event = twilio.parse_status(params, RECEIVED, query.get("m"))
    else:
        event = twilio.parse_inbound(params, RECEIVED)
    check(case, result_dict(ParseResult([event])))


def test_keywords_are_whole_message_case_and_space_insensitive() -> None:
    assert twilio.keyword_of("  StOp \n") == ("STOP", "unsubscribe")
    assert twilio.keyword_of("unstop") == ("UNSTOP", "subscribe")
    assert twilio.keyword_of("info") == ("INFO", "help")
    assert twilio.keyword_of("please stop") == (None, None)
    for word in ("STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"):
        assert twilio.keyword_of(word.lower())[1] == "unsubscribe"


INBOUND = {"MessageSid": "SM1", "From": "+14155550100", "To": "+14155550199", "NumMedia": "0"}


@pytest.mark.parametrize(
    ("body", "opt_out", "action"),
    [
        ("Arrêt", "STOP", "unsubscribe"),  # a localised keyword configured on the service
        ("ALTA", "START", "subscribe"),
        ("ayuda", "HELP", "help"),
        ("STOP", "", "unsubscribe"),  # without Advanced Opt-Out our default list decides
        ("please stop", "", None),
    ],
)
def test_advanced_opt_out_type_decides_the_keyword(
    body: str, opt_out: str, action: str | None
) -> None:
    params = {**INBOUND, "Body": body, **({"OptOutType": opt_out} if opt_out else {})}
    ev = twilio.parse_inbound(params, RECEIVED)
    assert ev.properties.get("keyword_action") == action
    if opt_out:
        assert ev.properties["keyword"] == body.upper()
        assert ev.properties["opt_out_type"] == opt_out


def test_rcs_addresses_are_the_rcs_channel() -> None:
    status = {"MessageSid": "SM2", "MessageStatus": "delivered", "To": "rcs:+14155550100",
              "From": "rcs:acme_agent", "ChannelStatusMessage": "Delivered to device"}  # fmt: skip
    ev = twilio.parse_status(status, RECEIVED)
    assert (ev.event, ev.channel, ev.contact) == ("RCS Message Delivered", "rcs", "+14155550100")
    assert ev.properties["channel_status_message"] == "Delivered to device"
    failed = twilio.parse_status({**status, "MessageStatus": "failed", "ErrorCode": "63016"}, 1)
    assert (failed.event, failed.properties["error_code"]) == ("RCS Message Failed", "63016")
    whatsapp = twilio.parse_inbound(
        {
            **INBOUND,
            "From": "whatsapp:+14155550100",
            "Body": "Hi",
            "ProfileName": "Ada",
            "WaId": "14155550100",
            "MessageType": "text",
        },
        RECEIVED,
    )
    assert whatsapp.properties["profile_name"] == "Ada"
    assert (whatsapp.properties["whatsapp_id"], whatsapp.properties["content_type"]) == (
        "14155550100",
        "text",
    )


params_strategy = st.lists(
    st.tuples(
        st.sampled_from(["Body", "From", "To", "MessageSid", "X"]),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(params=params_strategy)
def test_signature_matches_the_official_validator(params: list[tuple[str, str]]) -> None:
    url = "https://hooks.example.com/webhooks/twilio/sms/status?m=abc"
    validator = RequestValidator(TOKEN)
    multi = {}
    for name, value in params:
        multi.setdefault(name, []).append(value)

    class Multi(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    expected = validator.compute_signature(url, Multi(multi))
    assert twilio.signature(TOKEN, url, params) == expected
    twilio.check_signature({"x-twilio-signature": expected}, b"", url, TOKEN, params)


def test_verify_accepts_port_variants_and_body_hash_and_rejects_forgeries() -> None:
    validator = RequestValidator(TOKEN)
    params = [("MessageSid", "SM1"), ("MessageStatus", "sent")]
    signed = validator.compute_signature("https://hooks.example.com:443/x", dict(params))
    twilio.check_signature(
        {"x-twilio-signature": signed}, b"", "https://hooks.example.com/x", TOKEN, params
    )
    body = b'{"a": 1}'
    import hashlib

    url = f"https://hooks.example.com/x?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signed_json = validator.compute_signature(url, {})
    assert validator.validate(url, body.decode(), signed_json)
    twilio.check_signature({"x-twilio-signature": signed_json}, body, url, TOKEN, [])
    with pytest.raises(SignatureError):
        twilio.check_signature({"x-twilio-signature": signed_json}, b'{"a": 2}', url, TOKEN, [])
    with pytest.raises(SignatureError):
        twilio.check_signature(
            {"x-twilio-signature": signed},
            b"",
            "https://hooks.example.com/x",
            TOKEN,
            [("MessageSid", "SM1"), ("MessageStatus", "delivered")],
        )
    with pytest.raises(SignatureError):
        twilio.check_signature({}, b"", "https://hooks.example.com/x", TOKEN, params)
    with pytest.raises(SignatureError):
        twilio.check_signature(
            {"x-twilio-signature": signed},
            b"",
            "https://hooks.example.com/x",
            "another-token",
            params,
        )


def test_twiml() -> None:
    assert twilio.twiml(None).endswith("<Response/>")
    assert "<Message>Bye &amp; thanks</Message>" in twilio.twiml("Bye & thanks")
