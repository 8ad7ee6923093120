"""``engagehub demo``: a seeded week of signed vendor traffic into this server (or a remote one)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.demo import report as demo_report
from engagehub.demo import run as demo_run
from engagehub.demo import week
from engagehub.processing import run_until_caught_up


def demo(
    seed: Annotated[int, typer.Option(help="Same seed, same events and dedup keys.")] = 1,
    url: Annotated[
        str | None,
        typer.Option(help="A running server (e.g. http://127.0.0.1:8000); default: in-process."),
    ] = None,
    users: Annotated[int, typer.Option(min=1, max=900, help="Demo customers.")] = 30,
    start: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="First day of the simulated week (default: 7 days ago)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the Braze Currents Avro files.")
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(envvar="ENGAGEHUB_ADMIN_TOKEN", help="Admin token of the --url server."),
    ] = None,
) -> None:
    """Create a source per vendor and send a week of realistic, correctly signed traffic."""
    plan = week.build(seed, start, users)
    folder = out or Path(tempfile.mkdtemp(prefix="engagehub-demo-"))
    current = settings()
    with console.status(f"sending {len(plan.calls)} requests"):
        if url:
            with httpx.Client(base_url=url, timeout=30) as client:
                result = demo_run.run(
                    client, plan, folder, admin_token=admin_token, region=current.default_region
                )
            base = url
        else:
            from fastapi.testclient import TestClient

            from engagehub.app import create_app

            db = database()
            with TestClient(create_app(current)) as client:
                result = demo_run.run(client, plan, folder, db=db, region=current.default_region)
            with db.session() as conn:
                run_until_caught_up(conn, registry.processors(current))
            db.close()
            base = f"http://{current.host}:{current.port}"
            console.print(
                f"stored in {current.database_url.split('@')[-1]}; start the server "
                "with [bold]engagehub serve[/]",
                highlight=False,
            )
    demo_report.summary(console, plan, result, base)


def register(app: typer.Typer) -> None:
    """Attach ``demo``."""
    app.command()(demo)
