"""Shared fixtures: real SQLite files and a real PostgreSQL server (started by scripts/test).

Storage-facing fixtures are parametrized over both backends; a PostgreSQL test gets its own
schema so tests stay independent. Without ENGAGEHUB_TEST_POSTGRES_URL the PostgreSQL half
fails (it never silently skips); ENGAGEHUB_TEST_BACKENDS=sqlite limits a local run on purpose.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.settings import Settings
from engagehub.storage import Database, migrate, open_database
from engagehub.storage import sources as source_store

# In-process test servers run processors on a thread (a child process per app would cost a
# second of start-up each); tests of the process mode ask for it explicitly.
os.environ.setdefault("ENGAGEHUB_PROCESSOR_MODE", "thread")

ADMIN_TOKEN = "test-admin-token-0123456789"
BACKENDS = [b for b in os.environ.get("ENGAGEHUB_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


def postgres_base_url() -> str:
    """The server scripts/test started; a missing one is an error, not a skip."""
    url = os.environ.get("ENGAGEHUB_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "ENGAGEHUB_TEST_POSTGRES_URL is not set: run ./scripts/test (it starts PostgreSQL), "
            "or set ENGAGEHUB_TEST_BACKENDS=sqlite to run only the SQLite half"
        )
    return url


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema (dropped afterwards)."""
    base = postgres_base_url()
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_schema_url")
        return url
    return f"sqlite:///{tmp_path}/engagehub.db"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at the fresh database, with a known admin token."""
    return Settings(database_url=database_url, admin_token=ADMIN_TOKEN)  # type: ignore[arg-type]


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
