"""The ``engagehub`` command: one Typer app; feature packages add command groups in ``register``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from engagehub import __version__
from engagehub.access.cli import AuditedGroup
from engagehub.errors import EngagehubError

app = typer.Typer(
    name="engagehub",
    help="Message engagement events and consent, self-hosted.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=AuditedGroup,  # records every state-changing command in the audit log
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"engagehub {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Overrides ENGAGEHUB_DATABASE_URL.", show_default=False
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """engagehub: ingest, consent, analytics, messaging, export."""
    if database_url:
        os.environ["ENGAGEHUB_DATABASE_URL"] = database_url
        from engagehub.settings import get_settings

        get_settings.cache_clear()


def register() -> None:
    """Attach every command group (built-in features register the same way)."""
    from engagehub.cli import (
        admin,
        analytics,
        bench,
        consent,
        demo,
        events,
        import_braze,
        imports,
        messaging,
        profiles,
        serve,
        sources,
        worker,
    )

    for module in (
        serve,
        worker,
        sources,
        events,
        imports,
        import_braze,
        consent,
        profiles,
        demo,
        admin,
        bench,
    ):
        module.register(app)
    from engagehub.cli import destinations, export

    for module in (destinations, export):
        module.register(app)
    for module in (analytics,):
        module.register(app)
    messaging.register(app)
    from engagehub.cli import suppressions

    suppressions.register(app)
    from engagehub.cli import processors

    processors.register(app)
    from engagehub.access import cli as access_cli

    access_cli.register(app)
    from engagehub.privacy import cli as privacy_cli

    privacy_cli.register(app)


def main() -> None:
    """Entry point: errors print as ``error[code]: message`` with details, exit code 1."""
    register()
    try:
        app()
    except EngagehubError as exc:
        err.print(Text.assemble(("error", "bold red"), f"[{exc.code}]: {exc.message}"))
        for key, value in exc.details.items():
            err.print(Text(f"  {key}: {value}"))
        sys.exit(1)
