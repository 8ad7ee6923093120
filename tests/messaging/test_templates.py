"""Templates: Liquid rendering, strict merge tags, SMS encoding/segments, footers, the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engagehub.errors import PayloadError
from engagehub.messaging import sms
from engagehub.messaging.templates import TemplateIn, check_syntax, render
from tests.conftest import assert_error

WELCOME = {
    "name": "welcome",
    "channel": "email",
    "subject": "Hi {{ profile.first_name | default: 'there' }}",
    "html": "<html><body><p>Your plan: {{ profile.plan }}</p></body></html>",
    "text": "Your plan: {{ profile.plan }}",
}


@pytest.mark.parametrize(
    ("body", "encoding", "length", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count 2
        ("a" * 159 + "{", "GSM-7", 161, 2),
        ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM basic table
        ("ü" * 10 + "ł", "UCS-2", 11, 1),  # ł is not
        ("ł" * 70, "UCS-2", 70, 1),
        ("ł" * 71, "UCS-2", 71, 2),
        ("ł" * 134, "UCS-2", 134, 2),
        ("ł" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # surrogate pairs count 2
        ("", "GSM-7", 0, 0),
    ],
)
def test_sms_encoding_and_segments(body: str, encoding: str, length: int, segments: int) -> None:
    info = sms.analyze(body)
    assert (info.encoding, info.units, info.segments) == (encoding, length, segments)


def test_strict_mode_names_every_missing_tag_and_default_fills() -> None:
    tpl = TemplateIn.model_validate(WELCOME)
    with pytest.raises(PayloadError) as caught:
        render(tpl, {"profile": {}, "event": {}})
    assert caught.value.details["missing"] == ["profile.plan"]
    out = render(tpl, {"profile": {"plan": "pro"}, "event": {}, "unsubscribe_url": "https://u/x"})
    assert out.subject == "Hi there"
    assert out.html is not None
    assert "Your plan: pro" in out.html
    # marketing email: the unsubscribe link is added before </body> and to the text part
    assert out.html.index('href="https://u/x"') < out.html.index("</body>")
    assert out.text is not None
    assert out.text.endswith("Unsubscribe: https://u/x\n")
    lenient = render(tpl, {"profile": {}, "event": {}}, strict=False)
    assert lenient.missing == ["profile.plan"]


def test_sms_footer_policy_and_transactional() -> None:
    promo = TemplateIn(name="promo", channel="sms", body="Sale today, {{ profile.name }}!")
    out = render(promo, {"profile": {"name": "Ada"}})
    assert out.body == "Sale today, Ada!\nReply STOP to unsubscribe"
    own = TemplateIn(name="p2", channel="sms", body="Text STOP to opt out. Sale!")
    assert render(own, {}).body == "Text STOP to opt out. Sale!"
    otp = TemplateIn(name="otp", channel="sms", kind="transactional", body="Code {{ data.code }}")
    assert render(otp, {"data": {"code": 42}}).body == "Code 42"


def test_invalid_liquid_is_refused_with_the_part() -> None:
    with pytest.raises(PayloadError) as caught:
        check_syntax(TemplateIn(name="bad", channel="sms", body="Hi {% if %}"))
    assert caught.value.details["field"] == "body"


def test_templates_api(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post("/api/templates", json=WELCOME, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "marketing"
    sms_tpl = {"name": "promo", "channel": "sms", "body": "Zoë, -20% on {{ event.item }}"}
    assert client.post("/api/templates", json=sms_tpl, headers=admin).status_code == 201
    names = [t["name"] for t in client.get("/api/templates", headers=admin).json()["templates"]]
    assert names == ["promo", "welcome"]

    r = client.post(
        "/api/templates/welcome/preview", json={"traits": {"first_name": "Ada"}}, headers=admin
    )
    details = assert_error(r, 400, "invalid_payload")
    assert details["missing"] == ["profile.plan"]
    r = client.post(
        "/api/templates/welcome/preview",
        json={"traits": {"first_name": "Ada", "plan": "pro"}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "Hi Ada"
    assert "https://hub.test/unsubscribe/" in r.json()["html"]

    r = client.post(
        "/api/templates/promo/preview", json={"event": {"item": "shoes"}}, headers=admin
    )
    assert r.json()["body"] == "Zoë, -20% on shoes\nReply STOP to unsubscribe"
    assert r.json()["sms"] == {"encoding": "UCS-2", "length": 44, "segments": 1, "per_segment": 70}

    bad = {**WELCOME, "name": "broken", "html": "{% for x in %}"}
    details = assert_error(
        client.post("/api/templates", json=bad, headers=admin), 400, "invalid_payload"
    )
    assert details["field"] == "html"
    details = assert_error(
        client.post("/api/templates", json={**WELCOME, "subject": None}, headers=admin),
        400,
        "invalid_payload",
    )
    assert "subject" in str(details)
    assert_error(client.get("/api/templates/nope", headers=admin), 404, "not_found")
    assert client.delete("/api/templates/promo", headers=admin).status_code == 200
    assert_error(
        client.post("/api/templates/promo/preview", json={}, headers=admin), 404, "not_found"
    )
