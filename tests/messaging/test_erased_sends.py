"""Sends and erasure: queued rows of the person go with the erasure, a claim in flight sends
nothing and brings nothing back, and a send queued afterwards is cancelled keeping nothing."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from engagehub.messaging import sender
from engagehub.messaging.delivery import deliver
from engagehub.privacy import erase
from engagehub.settings import Settings
from engagehub.storage.base import Connection
from tests.conftest import app_hub, make_source
from tests.messaging.conftest import Sink, identify, subscribe
from tests.messaging.test_sends import PROMO

ERIN = "erin.gone@example.com"
KIM = "kim.kept@example.com"


def mentions(conn: Connection, value: str) -> list[tuple[object, ...]]:
    """Rows of message_sends or of the log that carry ``value`` anywhere."""
    found = []
    for table in ("message_sends", "events"):
        for row in conn.execute(f"SELECT * FROM {table}").fetchall():
            if value in repr(tuple(row)):
                found.append((table, *tuple(row)[:4]))
    return found


def test_erasure_cancels_queued_and_in_flight_sends(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink, settings: Settings
) -> None:
    hub = app_hub(client)
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    _src, key = make_source(hub.db)
    for user, email in (("u-erin", ERIN), ("u-kim", KIM)):
        identify(client, key, user, {"email": email, "first_name": user})
        subscribe(client, admin, email)
    with hub.db.session() as conn:
        with conn.transaction():
            queued = sender.enqueue(conn, "promo", "email", ERIN, {"data": {"who": ERIN}})
            flying = sender.enqueue(conn, "promo", "email", ERIN)
            kept = sender.enqueue(conn, "promo", "email", KIM)
        [job] = sender.claim(conn, 1, ids=[flying])  # a sender holds this one right now
        job_id = erase.request(conn, ERIN, "GDPR art. 17", "test", "US")["id"]
    assert erase.run(hub.db, job_id, settings)["state"] == "done"
    with hub.db.session() as conn:
        assert mentions(conn, ERIN) == []
        ids = {r[0] for r in conn.execute("SELECT id FROM message_sends").fetchall()}
        assert ids & {queued, flying, kept} == {kept}
    asyncio.run(deliver(hub.db, settings, [job]))  # the claim in flight finishes now
    assert smtp_sink.to(ERIN) == []
    with hub.db.session() as conn:
        assert mentions(conn, ERIN) == []
        assert conn.scalar("SELECT COUNT(*) FROM message_sends WHERE id = ?", (flying,)) == 0


def test_a_send_queued_after_erasure_is_cancelled_keeping_nothing(
    client: TestClient, admin: dict[str, str], smtp_sink: Sink, settings: Settings
) -> None:
    hub = app_hub(client)
    assert client.post("/api/templates", json=PROMO, headers=admin).status_code == 201
    subscribe(client, admin, ERIN)
    with hub.db.session() as conn:
        job_id = erase.request(conn, ERIN, None, "test", "US")["id"]
    assert erase.run(hub.db, job_id, settings)["state"] == "done"
    r = client.post(
        "/api/sends",
        json={"template": "promo", "to": ERIN, "transactional": True, "data": {"x": ERIN}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    sent = r.json()
    assert (sent["state"], sent["error"]) == ("dropped", sender.ERASED_ERROR)
    assert sent["contact"] == f"[erased:{sent['message_id']}]"
    assert smtp_sink.to(ERIN) == []
    with hub.db.session() as conn:
        assert mentions(conn, ERIN) == []
        assert conn.scalar("SELECT context FROM message_sends") == "{}"
    r = client.post("/api/sends", json={"template": "promo", "to": KIM}, headers=admin)
    assert r.json()["error"] == "not_subscribed: email is no_status"  # others: as before
