"""Storage: one contract (``base``), two backends (``sqlite``, ``postgres``), migrations."""

from __future__ import annotations

from engagehub.errors import ConfigError
from engagehub.settings import Settings, get_settings
from engagehub.storage.base import Connection, Database
from engagehub.storage.migrate import migrate

__all__ = ["Connection", "Database", "migrate", "open_database"]


def open_database(url: str | None = None, settings: Settings | None = None) -> Database:
    """The backend named by the URL (``sqlite:///...`` or ``postgresql://...``)."""
    settings = settings or get_settings()
    url = url or settings.database_url
    if url.startswith("sqlite:"):
        from engagehub.storage.sqlite import SQLiteDatabase

        return SQLiteDatabase(url, synchronous=settings.sqlite_synchronous)
    if url.startswith(("postgresql:", "postgres:")):
        from engagehub.storage.postgres import PostgresDatabase

        return PostgresDatabase(url, readers=settings.postgres_pool_size)
    raise ConfigError(
        "ENGAGEHUB_DATABASE_URL must start with sqlite:/// or postgresql://",
        setting="ENGAGEHUB_DATABASE_URL",
        value=url.split("@")[-1],
    )
