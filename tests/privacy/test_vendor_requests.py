"""Deletion requests vendors send (Segment ``delete`` calls, Braze ``users.UserDeleteRequest``)
are recognised as "User Deleted", recorded without an identifier, and become an erasure only
when an operator confirms them — or at once with ENGAGEHUB_PRIVACY_VENDOR_ERASURE=erase."""

from __future__ import annotations

import time
from typing import Any

import fastavro
import orjson
import pytest
from fastapi.testclient import TestClient

from engagehub import registry
from engagehub.errors import NotFound, PayloadError
from engagehub.model import IncomingEvent
from engagehub.privacy import erase, requests
from engagehub.processing import run_until_caught_up
from engagehub.profiles import store as profile_store
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.vendors import braze, segment
from tests.cases import CASES
from tests.conftest import ADMIN_TOKEN, make_source

T0 = 1_764_000_000_000
DELETES = CASES / "segment" / "delete_calls.json"
BRAZE_DELETE = CASES / "braze" / "currents" / "avro" / "users.UserDeleteRequest.avro"


def _identify(user: str, email: str) -> IncomingEvent:
    return IncomingEvent(
        dedup_key=f"id-{user}",
        event_time=T0,
        raw="{}",
        type="identify",
        user_id=user,
        contact=email,
        properties={"email": email},
    )


def _segment_deletes() -> list[IncomingEvent]:
    result = segment.parse_envelope(segment.decode(DELETES.read_bytes(), "batch"), T0)
    assert not result.rejected, result.rejected
    return result.events


def _rows(conn: Connection) -> list[dict[str, Any]]:
    return conn.all("SELECT * FROM privacy_vendor_requests ORDER BY seq")


def _known(conn: Connection, key: str, region: str = "US") -> bool:
    try:
        profile_store.find(conn, key, region)
    except NotFound:
        return False
    return True


def test_segment_delete_calls_are_user_deleted_events() -> None:
    events = _segment_deletes()
    assert [(e.type, e.event, e.user_id) for e in events] == [
        ("delete", "User Deleted", "507f191e81"),
        ("delete", "User Deleted", "5678"),
    ]
    # The Go-formatted originalTimestamp of Segment's own sample falls back to `timestamp`.
    assert events[0].event_time == 1_589_068_489_209


def test_braze_user_delete_request_is_user_deleted() -> None:
    with BRAZE_DELETE.open("rb") as fh:
        (record,) = list(fastavro.reader(fh))
    ev = braze.normalize("users.UserDeleteRequest", record)  # type: ignore[arg-type]
    assert ev.event == "User Deleted"
    assert requests.subject_key(ev) == (ev.user_id or ev.properties.get("braze_id"))  # type: ignore[arg-type]


def test_a_request_waits_for_an_operator_then_erases(db: Database, settings: Settings) -> None:
    src, _ = make_source(db, "seg", "segment")
    with db.session() as conn:
        people = [
            _identify("507f191e81", "gone@example.com"),
            _identify("5678", "kept@example.com"),
        ]
        log.append(conn, [log.Batch(src.id, T0, people)])
        log.append(conn, [log.Batch(src.id, T0, _segment_deletes())])
        run_until_caught_up(conn, registry.processors(settings))
        run_until_caught_up(conn, registry.processors(settings))  # a second pass adds nothing
        rows = _rows(conn)
        assert [(r["state"], r["vendor_event"]) for r in rows] == [("pending", None)] * 2
        assert "507f191e81" not in orjson.dumps(rows).decode()  # no identifier stored
        assert _known(conn, "gone@example.com")  # nothing erased without a decision
        first, second = (str(r["id"]) for r in rows)
        found = requests.decide(conn, first, "confirm", "tester", "US")
        assert found["state"] == "erasing"
        assert found["erasure"]["state"] == "pending"
        dismissed = requests.decide(conn, second, "dismiss", "tester", "US")
        assert dismissed["state"] == "dismissed"
        with pytest.raises(PayloadError) as twice:
            requests.decide(conn, second, "confirm", "tester", "US")
        assert twice.value.details["state"] == "dismissed"
        with pytest.raises(PayloadError):
            requests.decide(conn, first, "erase", "tester", "US")
    done = erase.run(db, found["erasure"]["id"], settings)
    assert done["state"] == "done"
    with db.session() as conn:
        assert not _known(conn, "gone@example.com")
        assert _known(conn, "kept@example.com")
        assert requests.get(conn, first)["erasure_id"] == found["erasure"]["id"]
        assert [r["state"] for r in requests.listing(conn, "pending")] == []


def test_erase_policy_erases_signed_sources_at_once_and_ignore_records_nothing(
    db: Database, settings: Settings
) -> None:
    """Braze (bearer secret) is honoured at once; a Segment write key may be public, so a
    Segment request still waits for an operator even under ``erase``."""
    bz, _ = make_source(db, "bz", "braze", secret="currents-bearer-secret")
    seg, _ = make_source(db, "seg", "segment")
    with BRAZE_DELETE.open("rb") as fh:
        (record,) = list(fastavro.reader(fh))
    braze_delete = braze.normalize("users.UserDeleteRequest", record)  # type: ignore[arg-type]
    known = IncomingEvent(
        dedup_key="bz-id",
        event_time=T0,
        raw="{}",
        type="identify",
        contact="auto@example.com",
        properties={"braze_id": braze_delete.properties["braze_id"], "email": "auto@example.com"},
    )
    with db.session() as conn:
        log.append(conn, [log.Batch(bz.id, T0, [known])])
        log.append(conn, [log.Batch(seg.id, T0, [_identify("5678", "seg@example.com")])])
        log.append(conn, [log.Batch(bz.id, T0, [braze_delete])])
        log.append(conn, [log.Batch(seg.id, T0, _segment_deletes()[1:])])
        ignoring = settings.model_copy(update={"privacy_vendor_erasure": "ignore"})
        run_until_caught_up(conn, registry.processors(ignoring))
        assert _rows(conn) == []
        conn.execute("DELETE FROM processor_offsets WHERE name = 'erasure_requests'")
        erasing = settings.model_copy(update={"privacy_vendor_erasure": "erase"})
        run_until_caught_up(conn, registry.processors(erasing))
        braze_row, segment_row = _rows(conn)
        assert braze_row["state"] == "erasing"
        assert braze_row["decided_by"] == f"source:{bz.id}"
        assert segment_row["state"] == "pending"
    erase.run(db, str(braze_row["erasure_id"]), settings)
    with db.session() as conn:
        assert not _known(conn, "auto@example.com")
        assert _known(conn, "seg@example.com")


def test_api_lists_and_confirms(client: TestClient, db: Database) -> None:
    _, key = make_source(db, "seg", "segment")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = orjson.loads(DELETES.read_bytes())
    sent = client.post("/v1/batch", json=body, auth=(key, ""))
    assert sent.status_code == 200, sent.text
    listed: list[dict[str, Any]] = []
    for _ in range(200):
        listed = client.get("/api/people/erasure-requests?state=pending", headers=admin).json()[
            "requests"
        ]
        if len(listed) == 2:
            break
        time.sleep(0.05)
    assert len(listed) == 2
    bad = client.get("/api/people/erasure-requests?state=maybe", headers=admin)
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["value"] == "maybe"
    scraped = client.get("/metrics", headers=admin).text
    assert 'engagehub_lag_events{kind="privacy",name="vendor_erasure_requests"} 2.0' in scraped
    rid = listed[0]["id"]
    decided = client.post(
        f"/api/people/erasure-requests/{rid}", json={"action": "confirm"}, headers=admin
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["erasure"]["id"].startswith("er_")
    missing = client.post(
        "/api/people/erasure-requests/vr_nope", json={"action": "dismiss"}, headers=admin
    )
    assert missing.status_code == 404


def test_cli_lists_confirms_and_erases(db: Database, settings: Settings, database_url: str) -> None:
    from tests.cli.test_cli import run

    src, _ = make_source(db, "seg", "segment")
    with db.session() as conn:
        log.append(conn, [log.Batch(src.id, T0, [_identify("5678", "cli@example.com")])])
        log.append(conn, [log.Batch(src.id, T0, _segment_deletes()[1:])])
    (pending,) = orjson.loads(run(database_url, "people", "requests").stdout)
    assert pending["state"] == "pending"
    done = run(database_url, "people", "requests", "--decide", "confirm", pending["id"]).stdout
    assert f"erasure request {pending['id']}: erasing" in done
    assert ": done" in done
    with db.session() as conn:
        assert not _known(conn, "cli@example.com")
    assert orjson.loads(run(database_url, "people", "requests").stdout) == []
    again = run(database_url, "people", "requests", "--decide", "dismiss", pending["id"], ok=False)
    assert again.returncode == 1
    assert "erasing, not pending" in again.stderr
