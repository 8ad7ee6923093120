"""``engagehub import braze-currents PATH``: Currents Avro exports into the log (idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import fastavro
import orjson
import typer

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.cli.imports import ImportStats, flush, import_app, progress_bar, source_of_kind
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.vendors import braze


@import_app.command("braze-currents")
def import_braze_currents(
    path: Annotated[Path, typer.Argument(exists=True, help="An export folder or one .avro file.")],
    source: Annotated[str, typer.Option(help="Name of a braze source.")],
    since: Annotated[
        str | None, typer.Option(help="Skip date= partitions before YYYY-MM-DD-HH.")
    ] = None,
    errors: Annotated[
        Path | None, typer.Option(help="Write rejected records here, one JSON object per line.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = 2000,
) -> None:
    """Import Braze Currents Avro files laid out as event_type=<users...>/date=<hour>/*.avro."""
    db = database()
    region = settings().default_region
    stats = ImportStats()
    files = list(braze.avro_files(path, since))
    total = sum(p.stat().st_size for p, _ in files)
    error_out = errors.open("wb") if errors else None
    try:
        with db.session() as conn, progress_bar() as bar:
            src = source_of_kind(conn, source, braze.KIND)
            task = bar.add_task(path.name, total=total or 1)
            buffer: list[IncomingEvent] = []
            for file_path, event_type in files:
                with file_path.open("rb") as fh:
                    try:
                        reader = fastavro.reader(fh)
                    except (ValueError, EOFError) as exc:
                        raise PayloadError(
                            f"not an Avro file: {exc}", path=str(file_path)
                        ) from None
                    for index, record in enumerate(reader):
                        stats.read += 1
                        try:
                            if not isinstance(record, dict):
                                raise PayloadError("Avro record is not a record", index=index)
                            buffer.append(braze.normalize(event_type, record, region))
                        except PayloadError as exc:
                            stats.rejected += 1
                            if error_out:
                                line = {"file": str(file_path), "index": index, **exc.body()}
                                error_out.write(orjson.dumps(line, default=str) + b"\n")
                        if len(buffer) >= batch_size:
                            flush(conn, src.id, buffer, stats)
                flush(conn, src.id, buffer, stats)
                bar.advance(task, file_path.stat().st_size)
            run_until_caught_up(conn, registry.processors(settings()))
    finally:
        if error_out:
            error_out.close()
    console.print(f"{len(files)} files · {stats.line()}", highlight=False)


def register(app: typer.Typer) -> None:
    """The command registers itself on ``import_app`` when this module is imported."""
