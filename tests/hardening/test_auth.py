"""Who may reach what: the admin token guards every management route, write keys reach only
the ingest routes of their own source, and secrets are compared in constant time."""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import engagehub
from engagehub.storage import Database
from tests.conftest import ADMIN_TOKEN, assert_error, make_source
from tests.hardening.routes import (
    INGEST_OPEN,
    INGEST_PREFIXES,
    concrete,
    dashboard_pages,
    management_routes,
    routes,
)


def test_every_management_route_requires_the_admin_token(client: TestClient, db: Database) -> None:
    _, write_key = make_source(db, "web", "segment")
    guarded = management_routes(client.app)
    assert len(guarded) >= 10, guarded
    wrong = [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {write_key}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {base64.b64encode(f'{ADMIN_TOKEN}:'.encode()).decode()}"},
        {"Cookie": "engagehub_session=forged", "Origin": "http://testserver"},
    ]
    for method, path in guarded:
        for headers in wrong:
            response = client.request(method, concrete(path), headers=headers)
            assert_error(response, 401, "unauthorized")


def test_dashboard_pages_need_a_session(client: TestClient) -> None:
    """Without a valid session cookie every page sends the browser to /login, and JSON or form
    endpoints refuse; a bearer token is no session."""
    pages = dashboard_pages(client.app)
    assert len(pages) >= 8, pages
    for method, path in pages:
        for headers in (
            {},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            {"Cookie": "engagehub_session=forged", "Origin": "http://testserver"},
        ):
            response = client.request(
                method, concrete(path), headers=headers, follow_redirects=False
            )
            if response.status_code == 303:
                assert response.headers["location"] == "/login", (method, path)
            else:
                assert response.status_code in (401, 403), (method, path, response.text)


# GET routes that answer only with a query parameter (who or what to look up).
NEEDS_QUERY = {
    "/api/subscriptions",
    "/api/subscriptions/history",
    "/api/suppressions/history",
    "/api/people/export",
}


def test_the_admin_token_opens_management_routes(client: TestClient, admin: dict[str, str]) -> None:
    """With the token, every GET gets its real answer: 200, or 404 for a resource that does not
    exist (path parameters are filled with "x1"), or 400 naming the missing query parameter."""
    reads = [p for m, p in management_routes(client.app) if m == "GET"]
    assert len(reads) >= 30, reads
    for path in reads:
        response = client.get(concrete(path), headers=admin)
        if "{" in path:
            assert_error(response, 404, "not_found")
        elif path in NEEDS_QUERY:
            details = assert_error(response, 400, "invalid_payload")
            assert details, (path, response.text)
        else:
            assert response.status_code == 200, (path, response.status_code, response.text)


def test_ingest_routes_exist_and_refuse_anonymous_calls(client: TestClient, db: Database) -> None:
    make_source(db, "x1", "segment")
    ingest = [
        (m, p)
        for m, p in routes(client.app)
        if p.startswith(INGEST_PREFIXES) and p not in INGEST_OPEN
    ]
    assert len(ingest) >= 8
    for method, path in ingest:
        response = client.request(method, concrete(path), content=b'{"batch": []}')
        assert response.status_code in (401, 403), (path, response.status_code, response.text)


def test_write_keys_reach_only_their_own_source_kind(client: TestClient, db: Database) -> None:
    _, segment_key = make_source(db, "web", "segment")
    _, xng_key = make_source(db, "xng", "crossengage")
    event = {"type": "track", "event": "Email Opened", "userId": "u1"}
    ok = client.post("/v1/track", json={**event, "writeKey": segment_key})
    assert ok.status_code == 200, ok.text
    details = assert_error(
        client.post("/v1/track", json={**event, "writeKey": xng_key}), 403, "forbidden"
    )
    assert details["kind"] == "crossengage"
    xng_headers = {"X-XNG-AuthToken": segment_key, "X-XNG-ApiVersion": "1"}
    body = {"id": "u1", "events": [{"event": "x", "timestamp": "2024-01-01T00:00:00Z"}]}
    assert_error(
        client.post("/crossengage/events", json=body, headers=xng_headers), 403, "forbidden"
    )
    # the admin token is no write key, and a write key is no admin token
    assert_error(
        client.post("/v1/track", json={**event, "writeKey": ADMIN_TOKEN}), 401, "unauthorized"
    )
    assert_error(
        client.get("/api/sources", headers={"Authorization": f"Bearer {segment_key}"}),
        401,
        "unauthorized",
    )


def test_webhook_secrets_belong_to_one_source(client: TestClient, db: Database) -> None:
    make_source(db, "moe-a", "moengage", secret="secret-of-a")
    make_source(db, "moe-b", "moengage", secret="secret-of-b")
    make_source(db, "seg", "segment")
    body = b'{"app_name": "x", "source": "MOENGAGE", "events": []}'
    own = client.post(
        "/webhooks/moengage/moe-a", content=body, headers={"Authorization": "Bearer secret-of-a"}
    )
    assert own.status_code == 200, own.text
    other = client.post(
        "/webhooks/moengage/moe-b", content=body, headers={"Authorization": "Bearer secret-of-a"}
    )
    assert_error(other, 401, "invalid_signature")
    wrong_kind = client.post(
        "/webhooks/moengage/seg", content=body, headers={"Authorization": "Bearer x"}
    )
    assert_error(wrong_kind, 403, "forbidden")


SECRET_WORDS = ("token", "secret", "signature", "digest", "mac", "password", "key_hash", "expected")


def _secret_name(node: ast.expr) -> str | None:
    name = (
        node.id
        if isinstance(node, ast.Name)
        else node.attr
        if isinstance(node, ast.Attribute)
        else None
    )
    if name and any(word in name.lower() for word in SECRET_WORDS):
        return name
    return None


def test_secrets_are_never_compared_with_equality_operators() -> None:
    """Constant time everywhere: ``==`` on a token, secret or signature leaks timing; use
    ``hmac.compare_digest``. Scans every module, so new code is held to the same rule."""
    offenders = []
    root = Path(engagehub.__file__).parent
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) for o in operands):
                continue  # against a literal: nothing secret (ruff S105 polices literal secrets)
            names = [n for n in map(_secret_name, operands) if n]
            if names:
                offenders.append(f"{path.relative_to(root)}:{node.lineno} compares {names}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("kind", ["braze", "moengage"])
def test_bearer_secrets_are_stored_hashed(db: Database, kind: str) -> None:
    make_source(db, "s", kind, secret="plain-bearer-secret")
    with db.session() as conn:
        stored = conn.scalar("SELECT secret FROM sources WHERE name = 's'")
        keys = conn.all("SELECT write_key_hash FROM sources WHERE name = 's'")
    assert stored is not None
    assert "plain-bearer-secret" not in str(stored)
    assert str(stored).startswith("sha256:")
    assert [len(str(k["write_key_hash"])) for k in keys] == [64], keys
