"""Frequency caps and quiet hours: deferred (not dropped), with visible reasons; transactional
messages exempt; per-broadcast overrides."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.errors import ConfigError
from engagehub.hub import Hub
from engagehub.messaging.pacing import quiet_until
from engagehub.messaging.service import MessagingService
from engagehub.settings import Settings
from engagehub.timeutil import parse_ts
from tests.conftest import app_hub, make_source
from tests.messaging.conftest import Sink, identify, subscribe
from tests.messaging.test_broadcasts import drain

PROMO = {"name": "promo", "channel": "email", "subject": "Hi", "text": "Deals"}
RECEIPT = {**PROMO, "name": "receipt", "kind": "transactional"}
NY = ZoneInfo("America/New_York")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def test_quiet_until_overnight_daytime_and_dst() -> None:
    at = datetime(2026, 3, 7, 22, 30, tzinfo=NY)  # the night before DST starts
    assert quiet_until(ms(at), "21:00-08:00", NY) == ms(datetime(2026, 3, 8, 8, 0, tzinfo=NY))
    # 8:00 on the DST day is 12:00 UTC, not 13:00
    assert (
        datetime.fromtimestamp(
            quiet_until(ms(at), "21:00-08:00", NY) / 1000,
            UTC,  # type: ignore[operator]
        ).hour
        == 12
    )
    early = datetime(2026, 6, 1, 6, 0, tzinfo=NY)
    assert quiet_until(ms(early), "21:00-08:00", NY) == ms(datetime(2026, 6, 1, 8, tzinfo=NY))
    assert quiet_until(ms(datetime(2026, 6, 1, 12, tzinfo=NY)), "21:00-08:00", NY) is None
    assert quiet_until(ms(datetime(2026, 6, 1, 8, tzinfo=NY)), "21:00-08:00", NY) is None
    lunch = datetime(2026, 6, 1, 12, 30, tzinfo=NY)
    assert quiet_until(ms(lunch), "12:00-13:00", NY) == ms(datetime(2026, 6, 1, 13, tzinfo=NY))
    assert quiet_until(ms(lunch), "13:00-14:00", NY) is None
    with pytest.raises(ConfigError, match="25:00-08:00"):
        quiet_until(ms(lunch), "25:00-08:00", NY)


@pytest.fixture
def paced(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A client whose settings carry the test's pacing options (``indirect`` parameters)."""
    extra: dict[str, Any] = request.param
    with TestClient(create_app(settings.model_copy(update=extra))) as client:
        yield client


def _quiet_now() -> str:
    """Quiet hours around the current time in New York (so a send now is deferred)."""
    now = datetime.now(NY)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    return f"{start:%H:%M}-{end:%H:%M}"


QUIET = _quiet_now()


@pytest.mark.parametrize("paced", [{"quiet_hours": QUIET}], indirect=True)
def test_quiet_hours_defer_in_the_persons_time_zone(
    paced: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    client = paced
    hub: Hub = app_hub(client)
    _, key = make_source(hub.db)
    identify(client, key, "ny", {"email": "ny@example.com", "timezone": "America/New_York"})
    identify(client, key, "tk", {"email": "tk@example.com", "time_zone": "Asia/Tokyo"})
    for tpl in (PROMO, RECEIPT):
        assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    for who in ("ny", "tk"):
        subscribe(client, admin, f"{who}@example.com")

    r = client.post("/api/sends", json={"template": "promo", "to": "ny@example.com"}, headers=admin)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "pending"
    assert body["defer_reason"] == f"quiet_hours: {QUIET} America/New_York"
    resume = parse_ts(body["next_attempt_at"])
    end = datetime.strptime(QUIET.split("-")[1], "%H:%M").time()
    assert datetime.fromtimestamp(resume / 1000, NY).time() == end
    assert body["attempts"] == 0  # waiting is not an attempt
    assert smtp_sink.to("ny@example.com") == []
    timeline = client.get("/api/events", params={"message_id": body["message_id"]}, headers=admin)
    [ev] = timeline.json()["events"]
    assert ev["event"] == "Email Send Deferred"
    assert ev["properties"]["defer_reason"] == "quiet_hours"
    assert parse_ts(ev["properties"]["resume_at"]) == resume

    # Tokyo is 13-14 hours ahead: outside New York's quiet hours
    r = client.post("/api/sends", json={"template": "promo", "to": "tk@example.com"}, headers=admin)
    assert r.json()["state"] == "sent", r.text
    # transactional mail is exempt
    r = client.post(
        "/api/sends", json={"template": "receipt", "to": "ny@example.com"}, headers=admin
    )
    assert r.json()["state"] == "sent", r.text


@pytest.mark.parametrize(
    "paced", [{"frequency_cap": 1, "frequency_cap_window_hours": 12}], indirect=True
)
def test_frequency_cap_defers_and_broadcasts_override_it(
    paced: TestClient, admin: dict[str, str], smtp_sink: Sink
) -> None:
    client = paced
    hub: Hub = app_hub(client)
    for tpl in (PROMO, RECEIPT):
        assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    for who in ("a", "b", "c"):
        subscribe(client, admin, f"{who}@example.com")
    first = client.post(
        "/api/sends", json={"template": "promo", "to": "a@example.com"}, headers=admin
    ).json()
    assert first["state"] == "sent"
    r = client.post("/api/sends", json={"template": "promo", "to": "a@example.com"}, headers=admin)
    assert r.status_code == 202
    second = r.json()
    assert second["defer_reason"] == "frequency_cap: 1 per 12h"
    resume = parse_ts(second["next_attempt_at"]) - parse_ts(first["updated_at"])
    assert 12 * 3_600_000 <= resume <= 12 * 3_600_000 + 5
    # transactional messages neither wait nor count
    r = client.post(
        "/api/sends", json={"template": "receipt", "to": "a@example.com"}, headers=admin
    )
    assert r.json()["state"] == "sent"
    assert len(smtp_sink.to("a@example.com")) == 2

    aud = {"name": "all", "channel": "email"}
    assert client.post("/api/audiences", json=aud, headers=admin).status_code == 201
    capped = {"name": "capped", "template": "promo", "audience": "all", "rate_per_second": 1000}
    assert client.post("/api/broadcasts", json=capped, headers=admin).status_code == 201
    assert client.post("/api/broadcasts/capped/start", headers=admin).status_code == 200
    drain(hub, MessagingService(hub.settings))
    status = client.get("/api/broadcasts/capped", headers=admin).json()
    assert status["counts"] == {"sent": 2, "pending": 1}
    assert status["deferred"] == {"frequency_cap": 1}
    assert status["state"] == "running"  # a deferred recipient is still to be sent
    assert len(smtp_sink.to("b@example.com")) == 1

    free = {**capped, "name": "uncapped", "frequency_cap": 0}
    assert client.post("/api/broadcasts", json=free, headers=admin).status_code == 201
    assert client.post("/api/broadcasts/uncapped/start", headers=admin).status_code == 200
    drain(hub, MessagingService(hub.settings))
    status = client.get("/api/broadcasts/uncapped", headers=admin).json()
    assert status["counts"] == {"sent": 3}
    assert status["frequency_cap"] == 0
    assert len(smtp_sink.to("a@example.com")) == 3
