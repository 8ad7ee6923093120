"""Vendor routes answered as plain ASGI (``ingest.direct``) give FastAPI's routes' answers."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.errors import EngagehubError
from engagehub.ingest import webhooks
from engagehub.ingest.direct import DirectIngest
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import ADMIN_TOKEN, basic, make_source, track
from tests.live import live_server

LIMIT = 4096
"""``ENGAGEHUB_MAX_BATCH_BYTES`` of these tests: a body over it is refused."""


def without_direct(app: FastAPI) -> FastAPI:
    """The same app answering every route through FastAPI (as before ``DirectIngest``)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DirectIngest]  # type: ignore[comparison-overlap]
    return app


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_batch_bytes": LIMIT})


@pytest.fixture
def pair(limited: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """The app with the plain ASGI routes, and the same app without them, one database."""
    with (
        TestClient(create_app(limited)) as direct,
        TestClient(without_direct(create_app(limited))) as routed,
    ):
        yield direct, routed


def _requests(key: str, web_key: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx arguments): answers of every kind a vendor route gives."""
    good = {"batch": [track("m1"), track("m2")]}
    partial = {"batch": [track("m3"), {"type": "track", "userId": "u1"}, track("m4")]}
    return [
        ("POST", "/v1/batch", {"json": good, "headers": basic(key)}),
        ("POST", "/v1/batch", {"json": good, "headers": basic(key)}),  # duplicates: still 200
        ("POST", "/v1/batch", {"json": partial, "headers": basic(key)}),
        ("POST", "/v1/batch", {"json": {"batch": [{"type": "nope"}]}, "headers": basic(key)}),
        ("POST", "/v1/batch", {"json": {"batch": [{}, {}]}, "headers": basic(key)}),
        ("POST", "/v1/batch", {"json": {**good, "writeKey": key}}),
        ("POST", "/v1/batch", {"json": good}),  # no write key: 401
        ("POST", "/v1/batch", {"json": good, "headers": basic("wrong")}),
        ("POST", "/v1/b", {"content": b'{"batch": [', "headers": basic(key)}),  # malformed
        ("POST", "/v1/t", {"content": b"x" * (LIMIT + 1), "headers": basic(key)}),  # 413
        (
            "POST",
            "/v1/batch",
            {
                "content": gzip.compress(b'{"batch": [%s]}' % b",".join([b"{}"] * 4000)),
                "headers": {**basic(key), "Content-Encoding": "gzip"},
            },
        ),  # inflates past the limit
        (
            "POST",
            "/v1/batch",
            {"content": b"{}", "headers": {**basic(key), "Content-Encoding": "br"}},
        ),
        (
            "POST",
            "/v1/track",
            {"json": track("m5"), "headers": {**basic(key), "Content-Type": "text/plain"}},
        ),
        ("POST", "/v1/identify", {"json": {"userId": "u1", "writeKey": key, "messageId": "i1"}}),
        (
            "POST",
            "/v1/t",
            {"json": track("m6"), "headers": {**basic(web_key), "Origin": "https://a.example"}},
        ),
        (
            "POST",
            "/v1/t",
            {"json": track("m7"), "headers": {**basic(web_key), "Origin": "https://evil.example"}},
        ),
        ("GET", "/v1/batch", {"headers": basic(key)}),  # 405 from FastAPI
        ("POST", "/v1/batch/", {"json": good, "headers": basic(key)}),
        ("POST", "/webhooks/sendgrid/nosuch", {"json": []}),  # 404: no source of that name
        ("POST", "/webhooks/sendgrid/sg", {"json": [{"event": "open"}]}),  # unsigned: 401
        ("POST", "/webhooks/moengage/mo", {"content": b"x" * 10}),  # no bearer token: 401
        ("POST", "/webhooks/sendgrid/a/b", {"json": []}),
    ]


_VOLATILE = {"date", "content-length"}


def _answer(response: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in _VOLATILE}
    return response.status_code, response.content, headers


def test_every_answer_is_the_fastapi_routes_answer(
    pair: tuple[TestClient, TestClient], limited: Settings
) -> None:
    direct, routed = pair
    hub_db = direct.app.state.hub.db  # type: ignore[attr-defined]
    _, key = make_source(hub_db)
    _, web_key = make_source(hub_db, "browser", config={"allowed_origins": ["https://a.example"]})
    make_source(hub_db, "sg", kind="sendgrid")
    make_source(hub_db, "mo", kind="moengage")
    statuses = set()
    for method, path, kwargs in _requests(key, web_key):
        got = _answer(direct.request(method, path, **kwargs))
        want = _answer(routed.request(method, path, **kwargs))
        assert got == want, (method, path)
        statuses.add(got[0])
    assert {200, 400, 401, 403, 404, 405, 413, 415} <= statuses, statuses


def test_vendor_posts_skip_fastapi_routes(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's route endpoints would call ``webhooks.receive``; the plain route does not."""
    _, key = make_source(db)

    async def routed(*args: Any, **kwargs: Any) -> Any:
        raise EngagehubError("answered through FastAPI's route")

    monkeypatch.setattr(webhooks, "receive", routed)
    r = client.post("/v1/batch", json={"batch": [track("m1")]}, headers=basic(key))
    assert r.status_code == 200, r.text
    with db.session() as conn:
        assert [e.dedup_key for e in log.read_range(conn, 0, 10)] == ["m1"]


def test_routes_found_as_fastapi_matches_them() -> None:
    direct = DirectIngest(lambda scope, receive, send: None)  # type: ignore[arg-type,return-value]
    assert direct.find("/v1/batch") is not None
    assert direct.find("/v1/b") is not None
    kind, hook, name = direct.find("/webhooks/twilio/my-src/status") or ("", None, None)
    assert (kind, name) == ("twilio", "my-src")
    assert hook is not None
    assert hook.route == "/webhooks/twilio/{source}/status"
    for path in ("/v1/batch/", "/v1/nope", "/webhooks/sendgrid/", "/webhooks/sendgrid/a/b", "/"):
        assert direct.find(path) is None, path


def test_segment_batch_over_real_http(database_url: str, db: Database) -> None:
    """A live ``engagehub serve``: the good events of a partly bad batch are stored before the
    200; a wrong key gets the one error shape and stores nothing."""
    _, key = make_source(db)
    env = {"ENGAGEHUB_DATABASE_URL": database_url, "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    body = {"batch": [track("m1"), {"type": "track"}, track("m2")]}
    with live_server(env) as server:
        r = httpx.post(server.url + "/v1/batch", json=body, headers=basic(key))
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 2
        assert [x["index"] for x in r.json()["rejected"]] == [1]
        with db.session() as conn:
            assert [e.dedup_key for e in log.read_range(conn, 0, 10)] == ["m1", "m2"]
        bad = httpx.post(
            server.url + "/v1/batch", json={"batch": [track("m9")]}, headers=basic("x")
        )
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] == "unauthorized"
    with db.session() as conn:
        assert [e.dedup_key for e in log.read_range(conn, 0, 10)] == ["m1", "m2"]
