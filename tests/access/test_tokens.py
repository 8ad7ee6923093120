"""Scoped tokens and the audit log over real ASGI, the CLI as a subprocess, on both backends."""

from __future__ import annotations

import re

import orjson
from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.cli.test_cli import run
from tests.conftest import ADMIN_TOKEN, assert_error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_token(client: TestClient, admin: dict[str, str], name: str, scope: str) -> str:
    r = client.post("/api/tokens", json={"name": name, "scope": scope}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scope"] == scope
    assert body["name"] == name
    token: str = body["token"]
    return token


def test_scopes_decide_what_a_token_may_do(client: TestClient, admin: dict[str, str]) -> None:
    reader = new_token(client, admin, "grafana", "read")
    writer = new_token(client, admin, "ci", "write")
    # read: every GET, never a change (even one a write token may make)
    assert client.get("/api/sources", headers=bearer(reader)).status_code == 200
    details = assert_error(
        client.post(
            "/api/sources", json={"name": "web", "kind": "segment"}, headers=bearer(reader)
        ),
        403,
        "forbidden",
    )
    assert details == {"token": "grafana", "scope": "read", "required": "write"}
    # write: changes, but neither tokens nor the audit log nor erasure
    r = client.post("/api/sources", json={"name": "web", "kind": "segment"}, headers=bearer(writer))
    assert r.status_code == 201, r.text
    for method, path in (
        ("POST", "/api/tokens"),
        ("GET", "/api/tokens"),
        ("GET", "/api/audit"),
    ):
        r = client.request(
            method, path, json={"name": "x", "scope": "admin"}, headers=bearer(writer)
        )
        assert_error(r, 403, "forbidden")
    # the bootstrap admin token keeps working, and lists tokens without their secrets
    listed = client.get("/api/tokens", headers=admin).json()["tokens"]
    assert [(t["name"], t["scope"], t["revoked"]) for t in listed] == [
        ("ci", "write", False),
        ("grafana", "read", False),
    ]
    assert reader not in orjson.dumps(listed).decode()
    # revoked: refused at once (same process), and the name is never reused
    assert client.post("/api/tokens/ci/revoke", headers=admin).json()["revoked"] is True
    assert_error(client.get("/api/sources", headers=bearer(writer)), 401, "unauthorized")
    r = client.post("/api/tokens", json={"name": "ci", "scope": "read"}, headers=admin)
    assert_error(r, 409, "conflict")
    assert_error(
        client.post("/api/tokens", json={"name": "x", "scope": "root"}, headers=admin),
        400,
        "invalid_payload",
    )


def test_tokens_are_stored_hashed(client: TestClient, admin: dict[str, str], db: Database) -> None:
    token = new_token(client, admin, "ops", "admin")
    with db.session() as conn:
        rows = conn.all("SELECT * FROM access_tokens")
    assert token not in orjson.dumps(rows).decode()
    assert rows[0]["token_hash"] != token
    assert len(rows[0]["token_hash"]) == 64


def test_every_change_is_audited_with_secrets_masked(
    client: TestClient, admin: dict[str, str]
) -> None:
    writer = new_token(client, admin, "deploy-bot", "write")
    reader = new_token(client, admin, "viewer", "read")
    body = {"name": "shop", "kind": "sendgrid", "secret": "whsec-very-secret-1"}
    assert client.post("/api/sources", json=body, headers=bearer(writer)).status_code == 201
    client.post("/api/sources", json={"name": "x", "kind": "segment"}, headers=bearer(reader))
    client.get("/api/sources", headers=bearer(writer))  # reads are not recorded
    client.post("/api/sources", json={"name": "y", "kind": "segment"})  # anonymous: not recorded
    r = client.get("/api/audit", headers=admin)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert "whsec-very-secret-1" not in r.text
    by_actor = {e["actor"]: e for e in entries}
    assert set(by_actor) == {"bootstrap", "deploy-bot", "viewer"}
    mine = by_actor["deploy-bot"]
    assert mine["action"] == "POST /api/sources"
    assert mine["via"] == "api"
    assert mine["result"] == "ok"
    assert mine["status"] == 201
    assert mine["params"]["body"] == {"name": "shop", "kind": "sendgrid", "secret": "***"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", mine["at"])
    refused = by_actor["viewer"]
    assert (refused["result"], refused["status"]) == ("forbidden", 403)
    # the token creations themselves: target = the token's name, never the token
    created = [e for e in entries if e["actor"] == "bootstrap"]
    assert {e["target"] for e in created} == {"deploy-bot", "viewer"}
    assert all(e["params"] == {"scope": s} for e, s in zip(created, ("read", "write"), strict=True))
    # filters and paging
    only = client.get("/api/audit?actor=deploy-bot", headers=admin).json()["entries"]
    assert [e["id"] for e in only] == [mine["id"]]
    page = client.get("/api/audit?limit=1", headers=admin).json()
    assert len(page["entries"]) == 1
    assert page["next_cursor"] == page["entries"][0]["id"]
    rest = client.get(f"/api/audit?cursor={page['next_cursor']}", headers=admin).json()
    assert len(rest["entries"]) == len(entries) - 1
    # the audit log cannot be edited through the API
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert_error(client.request(method, "/api/audit", headers=admin), 405, "method_not_allowed")
    assert_error(client.delete(f"/api/audit/{mine['id']}", headers=admin), 404, "not_found")


def test_cli_tokens_and_audit(database_url: str, db: Database) -> None:
    out = run(database_url, "tokens", "add", "nightly", "--scope", "write").stdout
    token = out.rsplit(": ", 1)[1].strip()
    assert token.startswith("ehw_")
    listed = orjson.loads(run(database_url, "tokens", "list", "--json").stdout)
    assert [(t["name"], t["scope"], t["revoked"]) for t in listed] == [("nightly", "write", False)]
    bad = run(database_url, "tokens", "add", "x", "--scope", "god", ok=False)
    assert bad.returncode == 1
    assert "unknown scope 'god'" in bad.stderr
    run(database_url, "tokens", "revoke", "nightly")
    run(
        database_url,
        "sources",
        "add",
        "web",
        "--kind",
        "segment",
        "--write-key",
        "wk-secret-123456",
    )
    lines = run(database_url, "audit", "--json").stdout.splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert [(e["action"], e["result"]) for e in entries] == [
        ("sources add", "ok"),
        ("tokens revoke", "ok"),
        ("tokens add", "invalid_payload"),
        ("tokens add", "ok"),
    ]
    assert all(e["via"] == "cli" and e["actor"].startswith("cli:") for e in entries)
    assert entries[0]["params"]["args"] == ["web", "--kind", "segment", "--write-key", "***"]
    assert entries[0]["target"] == "web"
    assert "wk-secret-123456" not in "\n".join(lines)
    # read-only commands are not recorded
    run(database_url, "tokens", "list")
    assert len(run(database_url, "audit", "--json").stdout.splitlines()) == 4


def _login(client: TestClient, token: str) -> TestClient:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = client.post("/login", data={"token": token, "csrf": csrf.group(1)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def test_dashboard_login_honours_the_scope(client: TestClient, admin: dict[str, str]) -> None:
    reader = new_token(client, admin, "analyst", "read")
    _login(client, reader)
    assert client.get("/").status_code == 200
    page = client.get("/audit")
    assert page.status_code == 403
    assert "needs &#39;admin&#39;" in page.text
    # a read session may navigate, never change state through a dashboard form
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert csrf
    form = {"csrf": csrf.group(1), "action": "add", "contact": "x@example.com", "channel": "email"}
    changed = client.post("/suppressions", data=form, follow_redirects=False)
    assert changed.status_code == 403
    assert "needs &#39;write&#39;" in changed.text
    nav = {"csrf": csrf.group(1), "kind": "profile", "q": "x"}
    assert client.post("/lookup", data=nav, follow_redirects=False).status_code == 303
    # revoking the token ends its session
    client.post("/api/tokens/analyst/revoke", headers=admin)
    r = client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    _login(client, ADMIN_TOKEN)
    page = client.get("/audit")
    assert page.status_code == 200
    assert "dashboard login" in page.text
    assert "analyst" in page.text
    logins = client.get("/api/audit?action=dashboard+login", headers=admin).json()["entries"]
    assert [(e["target"], e["via"]) for e in logins] == [
        ("bootstrap", "dashboard"),
        ("analyst", "dashboard"),
    ]


def test_a_scoped_token_counts_as_a_credential_for_large_uploads(
    client: TestClient, admin: dict[str, str]
) -> None:
    """Bodies over the anonymous 64 KB cap pass for a verified scoped token, not for a bogus one."""
    writer = new_token(client, admin, "importer", "write")
    rows = "".join(f"u{i},user{i}@example.com,subscribed\r\n" for i in range(4000))
    csv = ("user_id,email,email_subscription_status\r\n" + rows).encode()
    assert len(csv) > 64 * 1024
    upload = {"file": ("subs.csv", csv, "text/csv")}
    r = client.post("/api/imports", files=upload, headers=bearer(writer))
    assert r.status_code == 202, r.text
    bogus = client.post("/api/imports", files=upload, headers=bearer("not-a-token-" + "x" * 20))
    assert bogus.status_code == 401, bogus.text
