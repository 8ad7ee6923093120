"""``engagehub import ...``: bulk files into the log (streamed, idempotent, with a progress bar).

Vendor packages add their own ``import`` commands to ``import_app``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import ijson
import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.errors import ForbiddenError, PayloadError
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms
from engagehub.vendors import crossengage as crossengage_vendor

import_app = typer.Typer(help="Import files of events or subscriptions.", no_args_is_help=True)


class ImportStats:
    """What an import did, printed at the end."""

    def __init__(self) -> None:
        self.read = 0
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0

    def line(self) -> str:
        """One summary line."""
        return (
            f"read {self.read} · stored {self.stored} · already there {self.duplicates} · "
            f"rejected {self.rejected}"
        )


def progress_bar() -> Progress:
    """The progress bar every long import shows (bytes of the file)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def source_of_kind(conn: Connection, name: str, kind: str) -> source_store.Source:
    """The named source, which must be of ``kind``."""
    source = source_store.by_name(conn, name)
    if source.kind != kind:
        raise ForbiddenError(
            f"source {name!r} is of kind {source.kind!r}, not {kind!r}", source=name, kind=kind
        )
    return source


def flush(
    conn: Connection, source_id: int, buffer: list[IncomingEvent], stats: ImportStats
) -> None:
    """Append a buffer of parsed events in one transaction."""
    if not buffer:
        return
    (result,) = log.append(conn, [log.Batch(source_id, now_ms(), buffer)])
    stats.stored += result.inserted
    stats.duplicates += result.duplicates
    buffer.clear()


class _Tell:
    """A binary reader that remembers how far it got (for the progress bar)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.position += len(data)
        return data


def _json_rows(reader: _Tell) -> Iterator[object]:
    try:
        yield from ijson.items(reader, "item", use_float=True)
    except ijson.JSONError as exc:
        raise PayloadError(
            f"the file is not a valid JSON array: {exc}", position=reader.position
        ) from None


@import_app.command("crossengage")
def import_crossengage(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Data Feed JSON array.")
    ],
    source: Annotated[str, typer.Option(help="Name of a crossengage source.")],
    errors: Annotated[
        Path | None, typer.Option(help="Write rejected rows here, one JSON object per line.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = 2000,
) -> None:
    """Import a CrossEngage Data Feed file; importing the same file again adds nothing."""
    db = database()
    region = settings().default_region
    stats = ImportStats()
    error_out = errors.open("wb") if errors else None
    try:
        with db.session() as conn, file.open("rb") as fh, progress_bar() as bar:
            src = source_of_kind(conn, source, crossengage_vendor.KIND)
            task = bar.add_task(file.name, total=file.stat().st_size)
            reader = _Tell(fh)
            buffer: list[IncomingEvent] = []
            for index, row in enumerate(_json_rows(reader)):
                stats.read += 1
                try:
                    buffer.append(crossengage_vendor.parse_feed_row(row, index, region))
                except PayloadError as exc:
                    stats.rejected += 1
                    if error_out:
                        line = {"index": index, "row": row, **exc.body()}
                        error_out.write(orjson.dumps(line, default=str) + b"\n")
                if len(buffer) >= batch_size:
                    flush(conn, src.id, buffer, stats)
                    bar.update(task, completed=reader.position)
            flush(conn, src.id, buffer, stats)
            bar.update(task, completed=reader.position)
            run_until_caught_up(conn, registry.processors(settings()))
    finally:
        if error_out:
            error_out.close()
    console.print(stats.line(), highlight=False)
    if stats.rejected:
        where = f"; see {errors}" if errors else "; pass --errors FILE to keep them"
        console.print(f"[yellow]{stats.rejected} rows rejected{where}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``import``."""
    app.add_typer(import_app, name="import")
