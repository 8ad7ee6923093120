"""``engagehub export OUT_DIR``: the log as Parquet/Avro files, Braze Currents-true by default."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.errors import PayloadError
from engagehub.export import runner
from engagehub.processing import run_until_caught_up


def export(
    out_dir: Annotated[str, typer.Argument(help="Local directory or fsspec URL (s3://bucket/x).")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or avro.")] = "parquet",
    since: Annotated[
        int | None,
        typer.Option(help="Start after this log position instead of the stored cursor."),
    ] = None,
    events: Annotated[
        str | None, typer.Option(help='Event name globs, comma-separated, e.g. "Email *".')
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="currents (Braze's types and records, as Braze Currents writes them; the "
            "default for a new target) or canonical (folders per canonical event). Without "
            "it, an existing target keeps the layout it was written in."
        ),
    ] = None,
) -> None:
    """Write new events since the last run of this target (exactly once per event)."""
    if fmt not in runner.FORMATS:
        raise PayloadError(f"unknown format {fmt!r}; expected parquet or avro", field="format")
    db = database()
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(settings()))
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("exporting", total=None)

            def progress(done: int, head: int) -> None:
                bar.update(task, completed=done, total=head)

            result = runner.run(
                conn,
                out_dir,
                fmt,  # type: ignore[arg-type]
                since,
                events,
                progress=progress,
                layout=layout,
            )
    if result.upto > result.after:
        span = f"log positions {result.after + 1}..{result.upto}"
    else:
        span = f"nothing new after log position {result.after}"
    console.print(
        f"exported {result.events:,} events ({span}) into {len(result.files)} files "
        f"(layout {result.layout})",
        highlight=False,
    )
    if result.snapshot:
        console.print(f"subscription states snapshot: {result.snapshot}", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``export``."""
    app.command("export")(export)
