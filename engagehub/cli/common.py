"""Helpers shared by CLI commands: settings, a migrated database, Rich consoles."""

from __future__ import annotations

from rich.console import Console

from engagehub.settings import Settings, get_settings
from engagehub.storage import Database, migrate, open_database

console = Console()


def settings() -> Settings:
    """Current settings (env, with --database-url applied)."""
    return get_settings()


def database() -> Database:
    """The configured database, migrated to the current schema."""
    db = open_database(settings().database_url, settings())
    with db.session() as conn:
        migrate(conn)
    return db
