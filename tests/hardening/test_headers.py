"""Security headers on every answer, hardened cookies, and CSRF refusal for cookie sessions."""

from __future__ import annotations

from fastapi import Response
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.security.middleware import harden_cookie, secure_headers
from engagehub.settings import Settings
from tests.conftest import ADMIN_TOKEN, assert_error
from tests.hardening.routes import EMBEDDABLE, concrete, routes

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_every_get_route_answers_with_security_headers(client: TestClient) -> None:
    checked = 0
    for method, path in routes(client.app):
        if method != "GET":
            continue
        for headers in (ADMIN, {}):
            response = client.get(concrete(path), headers=headers)
            h = response.headers
            assert h["x-content-type-options"] == "nosniff", path
            if path in EMBEDDABLE:  # framed on purpose, by the sites the setting names
                csp = h["content-security-policy"]
                assert "frame-ancestors *" in csp, path
                assert "default-src 'none'" in csp, path
                checked += 1
                continue
            assert h["x-frame-options"] == "DENY", path
            # same-origin (dashboard pages: the browser's Origin/Referer backs the CSRF check)
            # leaks no more to other sites than no-referrer does.
            assert h["referrer-policy"] in ("no-referrer", "same-origin"), path
            assert "frame-ancestors 'none'" in h["content-security-policy"], path
            assert "cache-control" in h, path
            checked += 1
    assert checked >= 10
    api = client.get("/api/sources", headers=ADMIN)
    assert api.headers["cache-control"] == "no-store"
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


def test_error_answers_carry_the_headers_too(client: TestClient) -> None:
    response = client.get("/api/sources")
    assert_error(response, 401, "unauthorized")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_https_adds_hsts_and_secure_cookies() -> None:
    out = dict(secure_headers([(b"set-cookie", b"engagehub_session=abc; Path=/")], True, False))
    assert out[b"strict-transport-security"].startswith(b"max-age=")
    assert out[b"set-cookie"] == b"engagehub_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
    plain = dict(secure_headers([], False, False))
    assert b"strict-transport-security" not in plain


def test_cookies_keep_stricter_attributes_they_already_have() -> None:
    value = b"s=1; HttpOnly; SameSite=Strict"
    assert harden_cookie(value, https=False) == value


def test_cookie_set_by_any_route_is_hardened(settings: Settings) -> None:
    app = create_app(settings)

    async def login(response: Response) -> dict[str, str]:
        response.set_cookie("engagehub_session", "v")
        return {}

    app.add_api_route("/test-only/cookie", login, methods=["GET"])
    with TestClient(app) as client:
        cookie = client.get("/test-only/cookie").headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()


def test_cookie_sessions_cannot_be_used_cross_site(client: TestClient) -> None:
    cookie = {"Cookie": f"engagehub_session={ADMIN_TOKEN}"}
    body = {"name": "from-form", "kind": "segment"}
    forged = client.post(
        "/api/sources", json=body, headers={**cookie, "Origin": "https://evil.example"}
    )
    details = assert_error(forged, 403, "forbidden")
    assert details["origin"] == "https://evil.example"
    assert_error(client.post("/api/sources", json=body, headers=cookie), 403, "forbidden")
    same = client.post("/api/sources", json=body, headers={**cookie, "Origin": "http://testserver"})
    assert same.status_code == 201, same.text
    # reads and header-authenticated writes are not affected
    assert client.get("/api/sources", headers=cookie).status_code == 200
    other = client.post("/api/sources", json={"name": "api", "kind": "segment"}, headers=ADMIN)
    assert other.status_code == 201
