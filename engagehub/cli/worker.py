"""``engagehub worker``: processors and background services without HTTP (scale-out)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from engagehub import registry
from engagehub.cli.common import console, settings
from engagehub.storage import open_database


def worker(
    processors: Annotated[
        bool, typer.Option("--processors/--no-processors", help="Follow the log with processors.")
    ] = True,
    services: Annotated[
        bool,
        typer.Option("--services/--no-services", help="Run background services (deliveries...)."),
    ] = True,
) -> None:
    """Run log processors and background services until stopped (SIGTERM); start any number."""
    from engagehub.scaleout.worker import run_worker

    current = settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    chosen = registry.processors(current) if processors else []
    jobs = registry.services(current) if services else []
    db = open_database(current.database_url, current)
    if db.dialect == "sqlite":
        console.print(
            "[yellow]worker on SQLite: run one, next to one `serve` with "
            "ENGAGEHUB_RUN_PROCESSORS=false; use PostgreSQL to scale out[/]"
        )
    console.print(
        f"engagehub worker · database {current.database_url.split('@')[-1]} · "
        f"processors {', '.join(p.name for p in chosen) or '-'} · "
        f"services {', '.join(s.name for s in jobs) or '-'}",
        highlight=False,
    )
    run_worker(current, db, chosen, jobs)


def register(app: typer.Typer) -> None:
    """Attach ``worker``."""
    app.command()(worker)
