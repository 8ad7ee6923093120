"""The public double opt-in form: pending until the emailed link is clicked, the same answer
whatever the address's state, bounded against anonymous abuse (rate, dedup, groups, trap)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from engagehub.messaging.service import MessagingService
from engagehub.privacy import erase
from engagehub.settings import Settings
from engagehub.storage.base import Connection
from tests.conftest import app_hub
from tests.messaging.conftest import Sink
from tests.messaging.test_broadcasts import drain
from tests.messaging.test_double_opt_in import CONFIRM, link_in, settle

NEWS = {
    "name": "news",
    "channel": "email",
    "subject": "News",
    "text": "News",
    "subscription_group": "newsletter",
}
DONE = "If this address can be subscribed"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The messaging settings, with a low form rate so the limit is reachable."""
    return settings.model_copy(update={"subscribe_form_rate_per_minute": 6})


def form_token(client: TestClient, group: str = "") -> str:
    page = client.get("/subscribe", params={"group": group} if group else None)
    assert page.status_code == 200, page.text
    found = re.search(r"name='form' value='([^']+)'", page.text)
    assert found, page.text
    return found.group(1)


def post(client: TestClient, email: str, group: str = "", **extra: str) -> str:
    data = {"form": form_token(client, group), "email": email, "group": group, **extra}
    r = client.post("/subscribe", data=data)
    assert r.status_code == 200, r.text
    return r.text


def doi_events(conn: Connection) -> int:
    return int(conn.scalar("SELECT COUNT(*) FROM events WHERE dedup_key LIKE 'doi:form:%'"))


def test_form_asks_for_confirmation_and_tells_nobody_who_is_subscribed(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink, settings: Settings
) -> None:
    for tpl in (CONFIRM, NEWS):
        assert client.post("/api/templates", json=tpl, headers=admin).status_code == 201
    page = client.get("/subscribe", params={"group": "newsletter"})
    assert "frame-ancestors *" in page.headers["content-security-policy"]
    assert "<label for='email'>" in page.text
    assert client.get("/subscribe", params={"group": "invented"}).status_code == 404

    answer = post(client, "Ada@Example.com", "newsletter")
    assert DONE in answer
    hub = settle(client)
    with hub.db.reader() as conn:
        state = conn.one(
            "SELECT status, reason FROM subscription_states WHERE contact = 'ada@example.com'"
        )
    assert state == {"status": "pending", "reason": "double_opt_in_requested"}
    drain(hub, MessagingService(hub.settings))
    path = link_in(smtp_sink, "ada@example.com")
    assert client.post(path).status_code == 200
    hub = settle(client)
    with hub.db.reader() as conn:
        assert (
            conn.scalar(
                "SELECT status FROM subscription_states WHERE contact = 'ada@example.com' "
                "AND group_name = 'newsletter'"
            )
            == "subscribed"
        )
        requests = doi_events(conn)
    # subscribed now: the same answer, nothing queued; a second ask within the window neither
    assert post(client, "ada@example.com", "newsletter") == answer
    assert DONE in post(client, "bob@example.com")
    assert DONE in post(client, "bob@example.com")
    with hub.db.reader() as conn:
        assert doi_events(conn) == requests + 1
    # an erased person's address: the same answer, nothing stored
    with hub.db.session() as conn:
        eid = erase.request(conn, "carla@example.com", None, "test", "US")["id"]
    erase.run(hub.db, eid, settings)
    assert post(client, "carla@example.com") == answer
    with hub.db.reader() as conn:
        assert doi_events(conn) == requests + 1
        assert not conn.scalar("SELECT COUNT(*) FROM events WHERE raw LIKE '%carla%'")


def test_form_is_bounded_against_anonymous_abuse(client: TestClient, admin: dict[str, str]) -> None:
    hub = app_hub(client)
    bad = client.post("/subscribe", data={"form": "1.forged", "email": "x@example.com"})
    assert bad.status_code == 400
    r = client.post("/subscribe", data={"form": form_token(client), "email": "not an address"})
    assert r.status_code == 400
    assert "<form" in r.text  # the form again, with the reason
    r = client.post(
        "/subscribe", data={"form": form_token(client), "email": "a@example.com", "group": "x"}
    )
    assert r.status_code == 404  # only groups that templates name
    assert DONE in post(client, "bot@example.com", website="https://spam.test")  # the trap
    with hub.db.reader() as conn:
        assert doi_events(conn) == 0
    for n in range(2):
        post(client, f"p{n}@example.com")
    r = client.post("/subscribe", data={"form": form_token(client), "email": "z@example.com"})
    assert r.status_code == 429  # six a minute from one address (bad posts counted too)
    assert int(r.headers["retry-after"]) >= 1
    big = client.post("/subscribe", content=b"email=" + b"a" * 70_000)
    assert big.status_code in (400, 413)
