"""Privacy over real HTTP on both backends: erase (202, then done), export, suppression on
/metrics, the erased contact never messaged again, and no byte of the person left in the files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.conftest import assert_error, basic, make_source, settle
from tests.waiting import eventually

EMAIL = "carla.erased@example.com"
USER = "u-carla-2718"
ANON = "anon-carla-31"
OTHER = "dora.kept@example.com"


def calls(user: str, email: str, anon: str, n: int = 5) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "identify",
            "messageId": f"{user}-id",
            "userId": user,
            "anonymousId": anon,
            "traits": {"email": email, "plan": "gold"},
            "timestamp": "2026-03-02T10:00:00Z",
        }
    ]
    out += [
        {
            "type": "track",
            "messageId": f"{user}-t{i}",
            "userId": user,
            "event": "Email Opened",
            "properties": {"email": email, "message_id": f"{user}-m1", "campaign_id": "spring"},
            "timestamp": "2026-03-02T11:00:00Z",
        }
        for i in range(n)
    ]
    return out


def wait_done(client: TestClient, admin: dict[str, str], eid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/people/erasures/{eid}", headers=admin).json()
        return body if body["state"] == "done" else None

    found: dict[str, Any] = eventually(done, 15, what=f"erasure {eid} done")
    return found


def ingest(client: TestClient, key: str, batch: list[dict[str, Any]]) -> None:
    r = client.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert r.status_code == 200, r.text


def test_erase_export_suppress_over_http(
    client: TestClient, db: Database, admin: dict[str, str], database_url: str
) -> None:
    _, key = make_source(db)
    ingest(client, key, calls(USER, EMAIL, ANON) + calls("u-dora", OTHER, "anon-dora"))
    r = client.put(
        "/api/subscriptions",
        json={"subscriptions": [{"key": EMAIL, "type": "EMAIL", "status": "SUBSCRIBED"}]},
        headers=admin,
    )
    assert r.status_code < 300, r.text
    settle(client)  # the consent change's companion events are in the log before both exports
    # export: one JSON document, complete
    r = client.get(f"/api/people/export?key={EMAIL}", headers=admin)
    assert r.status_code == 200, r.text
    doc = orjson.loads(r.content)
    assert doc["format"] == "engagehub.person-export/1"
    assert {(i["kind"], i["value"]) for i in doc["identities"]} >= {
        ("user_id", USER),
        ("anonymous_id", ANON),
        ("email", EMAIL),
    }
    assert doc["profile"]["traits"]["plan"] == "gold"
    assert doc["event_count"] == len(doc["events"]) >= 6
    assert {e["event_id"] for e in doc["events"]} >= {
        e["event_id"]
        for e in client.get(f"/api/events?user_id={USER}", headers=admin).json()["events"]
    }
    assert doc["consent_history"]
    assert doc["consent_history"][0]["contact"] == EMAIL
    assert OTHER not in r.text
    assert_error(
        client.get("/api/people/export?key=nobody@x.test", headers=admin), 404, "not_found"
    )
    # the same document as a zip, for large histories
    z = client.get(f"/api/people/export?key={EMAIL}&format=zip", headers=admin)
    assert z.status_code == 200, z.text
    assert z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["person-export.json"]
        zipped = orjson.loads(archive.read("person-export.json"))
    assert zipped["event_count"] == doc["event_count"]
    assert zipped["identities"] == doc["identities"]
    assert_error(
        client.get(f"/api/people/export?key={EMAIL}&format=tar", headers=admin),
        400,
        "invalid_payload",
    )
    # erase: 202 with an id, then done
    r = client.post("/api/people/erase", json={"key": ANON, "reason": "ticket 42"}, headers=admin)
    assert r.status_code == 202, r.text
    job = wait_done(client, admin, r.json()["id"])
    assert job["counts"]["events"] >= 6
    assert job["reason"] == "ticket 42"
    assert_error(client.get(f"/api/people/export?key={EMAIL}", headers=admin), 404, "not_found")
    assert client.get(f"/api/events?user_id={USER}", headers=admin).json()["events"] == []
    assert client.get("/api/events?user_id=u-dora", headers=admin).json()["events"]
    # suppression: acknowledged like Segment does, not stored, counted on /metrics
    ingest(client, key, calls(USER, EMAIL, ANON, n=3))
    assert client.get(f"/api/events?user_id={USER}", headers=admin).json()["events"] == []
    metrics = client.get("/metrics", headers=admin).text
    line = next(
        x for x in metrics.splitlines() if x.startswith("engagehub_events_suppressed_total")
    )
    assert float(line.split()[-1]) >= 4
    # the audit log has the erasure, never the key
    entries = client.get("/api/audit?action=erase", headers=admin).json()["entries"]
    assert entries[0]["target"] == job["id"]
    assert entries[0]["params"]["key"] == "[erased]"
    audit = client.get("/api/audit", headers=admin).text
    assert EMAIL not in audit
    assert ANON not in audit
    with db.session() as conn:
        assert rows_mentioning(conn, [EMAIL, USER, ANON]) == []
        assert rows_mentioning(conn, [OTHER])  # the scan finds what is there
    if database_url.startswith("sqlite:///"):
        assert_files_clean(Path(database_url.removeprefix("sqlite:///")), [EMAIL, USER, ANON])


def rows_mentioning(conn: Any, values: list[str]) -> list[tuple[str, str]]:
    """(table, column) of every text cell in the database that contains one of the values."""
    if conn.dialect == "sqlite":
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = [(t, str(c[1])) for t in tables for c in conn.execute(f"PRAGMA table_info({t})")]
    else:
        columns = [
            (str(t), str(c))
            for t, c in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN ('text', 'jsonb')"
            )
        ]
    found = []
    for table, column in columns:
        for value in values:
            sql = f"SELECT 1 FROM {table} WHERE CAST({column} AS TEXT) LIKE ? LIMIT 1"
            if conn.scalar(sql, (f"%{value}%",)):
                found.append((table, column))
    return found


def assert_files_clean(path: Path, values: list[str]) -> None:
    """Every file of the database (main, WAL, shared memory) read as bytes."""
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert path in files
    blob = b"".join(p.read_bytes() for p in files)
    assert OTHER.encode() in blob  # the check can see plain text: the other person is there
    for value in values:
        assert value.encode() not in blob, value


def test_erased_contact_is_never_messaged(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    _, key = make_source(db)
    ingest(client, key, calls(USER, EMAIL, ANON, n=1))
    r = client.post("/api/people/erase", json={"key": USER}, headers=admin)
    wait_done(client, admin, r.json()["id"])
    from engagehub.messaging import sender
    from engagehub.privacy import suppress

    with db.session() as conn:
        assert suppress.blocked(conn, [EMAIL, OTHER]) == {EMAIL}
        jobs = [
            sender.Job("a", "t", "email", EMAIL, None, None, True, {}, 0),
            sender.Job("b", "t", "email", OTHER, None, None, True, {}, 0),
        ]
        prep = sender.Prepared({}, b"k", "http://x")
        sender.check_consent(conn, jobs, prep)
    assert (jobs[0].outcome, jobs[1].outcome) == ("dropped", "")
    assert jobs[0].error
    assert jobs[0].error.startswith("erased")


def test_write_token_cannot_erase(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post("/api/tokens", json={"name": "w", "scope": "write"}, headers=admin)
    token = r.json()["token"]
    r = client.post(
        "/api/people/erase", json={"key": EMAIL}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(r, 403, "forbidden")
    assert_error(
        client.post("/api/people/erase", json={"key": ""}, headers=admin), 400, "invalid_payload"
    )
    details = assert_error(
        client.post("/api/people/erase", json={"key": "  "}, headers=admin), 400, "invalid_payload"
    )
    assert details == {"field": "key"}
    assert_error(client.get("/api/people/export?key=%20", headers=admin), 400, "invalid_payload")
    assert_error(client.get("/api/people/erasures/er_nope", headers=admin), 404, "not_found")
