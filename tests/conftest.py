"""Shared fixtures: real SQLite files and a real PostgreSQL server (started by scripts/test).

Storage-facing fixtures are parametrized over both backends; a PostgreSQL test gets its own
schema so tests stay independent. Without ENGAGEHUB_TEST_POSTGRES_URL the PostgreSQL half
fails (it never silently skips); ENGAGEHUB_TEST_BACKENDS=sqlite limits a local run on purpose.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.applications import Starlette

from engagehub.app import create_app
from engagehub.hub import Hub
from engagehub.model import IncomingEvent
from engagehub.settings import Settings
from engagehub.storage import Database, migrate, open_database
from engagehub.storage import sources as source_store
from engagehub.storage.events import head as log_head

# In-process test servers run processors on a thread (a child process per app would cost a
# second of start-up each); tests of the process mode ask for it explicitly.
os.environ.setdefault("ENGAGEHUB_PROCESSOR_MODE", "thread")

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN_SECRET = SecretStr(ADMIN_TOKEN)
"""The admin token as Settings takes it."""
BACKENDS = [b for b in os.environ.get("ENGAGEHUB_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


def postgres_base_url() -> str:
    """The server scripts/test started; a missing one is an error, not a skip."""
    url = os.environ.get("ENGAGEHUB_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "ENGAGEHUB_TEST_POSTGRES_URL is not set: run ./scripts/test (it starts PostgreSQL), "
            "or set ENGAGEHUB_TEST_BACKENDS=sqlite to run only the SQLite half"
        )
    return _worker_database(url)


_WORKER_DATABASES: dict[str, str] = {}


def _worker_database(url: str) -> str:
    """Under pytest-xdist, one database per worker: advisory locks and NOTIFY are per database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    if url not in _WORKER_DATABASES:
        name = f"engagehub_{worker}"
        with psycopg.connect(url, autocommit=True) as conn:
            if (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is None
            ):
                conn.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(url)
        _WORKER_DATABASES[url] = urlunsplit(parts._replace(path=f"/{name}"))
    return _WORKER_DATABASES[url]


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema (dropped afterwards)."""
    base = postgres_base_url()
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL of its own fresh schema."""
    with fresh_pg_schema() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_schema_url")
        return url
    return f"sqlite:///{tmp_path}/engagehub.db"


@pytest.fixture
def second_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Another fresh database of the same backend as ``database_url`` (to compare two runs)."""
    if database_url.startswith("postgresql"):
        with fresh_pg_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path}/second.db"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at the fresh database, with a known admin token."""
    return Settings(database_url=database_url, admin_token=ADMIN_SECRET)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The migrated database."""
    database = open_database(settings.database_url, settings)
    with database.session() as conn:
        migrate(conn)
    yield database
    database.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app over real ASGI, started (lifespan: migrations, writer, processors)."""
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client


def basic(key: str) -> dict[str, str]:
    """HTTP Basic auth with a write key as the user name (how Segment clients send it)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def logged(key: str, t: int, properties: dict[str, Any] | None = None, **kw: Any) -> IncomingEvent:
    """An event as a vendor's parser hands it to the log: ``properties`` also as its raw JSON."""
    props = properties or {}
    return IncomingEvent(
        dedup_key=key, event_time=t, raw=orjson.dumps(props).decode(), properties=props, **kw
    )


def track(message_id: str, **kw: object) -> dict[str, object]:
    """One Segment track call (Email Opened by u1), with ``kw`` added or replaced."""
    return {
        "type": "track",
        "event": "Email Opened",
        "userId": "u1",
        "messageId": message_id,
        "timestamp": "2026-03-01T00:00:00Z",
        **kw,
    }


def app_hub(client: TestClient) -> Hub:
    """The Hub of the app a TestClient drives, typed (checked, not cast)."""
    assert isinstance(client.app, Starlette)
    hub = client.app.state.hub
    assert isinstance(hub, Hub)
    return hub


def settle(client: TestClient) -> Hub:
    """Wait until every processor applied the whole log as it is now (their companion events,
    appended in the same rounds, included)."""
    hub = app_hub(client)
    with hub.db.reader() as conn:
        head = log_head(conn)
    client.portal.call(hub.caught_up, head)  # type: ignore[union-attr]
    return hub


@pytest.fixture
def hub(client: TestClient) -> Hub:
    """The started app's Hub."""
    return app_hub(client)


@pytest.fixture
def admin() -> dict[str, str]:
    """Headers carrying the admin token."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_source(
    db: Database, name: str = "web", kind: str = "segment", **kwargs: Any
) -> tuple[source_store.Source, str]:
    """Create a source directly in storage; returns it and its write key."""
    with db.session() as conn:
        return source_store.create(conn, name, kind, **kwargs)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Every error has the one shape; returns its details for further checks."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    details: dict[str, Any] = body["error"]["details"]
    return details
