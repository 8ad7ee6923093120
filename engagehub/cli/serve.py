"""``engagehub serve``: the HTTP server on the embedded SQLite default (or PostgreSQL)."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

import typer
import uvicorn

from engagehub.cli.common import console, settings
from engagehub.ops.logs import announce, log_config


def serve(
    host: Annotated[str | None, typer.Option(help="Overrides ENGAGEHUB_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides ENGAGEHUB_PORT.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (PostgreSQL scales).")] = 1,
    sqlite_synchronous: Annotated[
        str | None,
        typer.Option(help="NORMAL (survives kill -9) or FULL (also survives power loss)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request (costs throughput).")] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Once up, send the demo week (engagehub demo) to it.")
    ] = False,
    demo_seed: Annotated[int, typer.Option(help="Seed of the --demo traffic.")] = 1,
) -> None:
    """Run the server: ingest routes, management API, processors; schema migrates on start."""
    overrides = {"HOST": host, "PORT": port, "SQLITE_SYNCHRONOUS": sqlite_synchronous}
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"ENGAGEHUB_{name}"] = str(value)
    from engagehub.settings import get_settings

    get_settings.cache_clear()
    current = settings()
    where = current.database_url.split("@")[-1]
    if workers > 1 and current.database_url.startswith("sqlite:"):
        console.print(
            "[yellow]--workers > 1 on SQLite: the processes share one write lock; "
            "use PostgreSQL to scale out (docs/deployment.md)[/]"
        )
    if current.log_format == "json":
        announce(current, "starting", url=f"http://{current.host}:{current.port}", database=where)
    else:
        console.print(
            f"engagehub on [bold]http://{current.host}:{current.port}[/] · database {where}",
            highlight=False,
        )
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its counters to files here; /metrics sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="engagehub-metrics-")
    if demo:
        from engagehub.demo.background import start_demo_thread

        start_demo_thread(current, demo_seed)
    uvicorn.run(
        "engagehub.app:create_app",
        factory=True,
        host=current.host,
        port=current.port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        http="engagehub.security.timeouts:TimedHttpToolsProtocol",
        limit_concurrency=current.max_connections,
        log_config=log_config(current, log_level) or uvicorn.config.LOGGING_CONFIG,
    )


def register(app: typer.Typer) -> None:
    """Attach ``serve``."""
    app.command()(serve)
