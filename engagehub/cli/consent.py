"""``engagehub import subscriptions``, ``engagehub template subscriptions``."""

from __future__ import annotations

import contextlib
import resource
import time
from pathlib import Path
from typing import Annotated

import typer

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.cli.follow import CACHE_KB, Follower, peak_rss_mb
from engagehub.cli.imports import import_app, progress_bar
from engagehub.consent import batches, store
from engagehub.consent.csv_import import (
    TEMPLATE,
    CsvErrorReport,
    CsvImport,
    file_digest,
    refused_indexes,
    run_import,
)
from engagehub.consent.model import Change
from engagehub.privacy import suppress
from engagehub.processing import run_until_caught_up
from engagehub.runtime import tune_runtime
from engagehub.timeutil import now_ms

ALONGSIDE_BYTES = 2_000_000
"""Files from this size on run the processors in follower processes while they are parsed."""

template_app = typer.Typer(help="Print file templates.", no_args_is_help=True)


@template_app.command("subscriptions")
def template_subscriptions() -> None:
    """Print the header of a subscriptions CSV (identifiers, statuses, a group, traits)."""
    print(",".join(TEMPLATE))


@import_app.command("subscriptions")
def import_subscriptions(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A UTF-8 CSV file.")],
    dry_run: Annotated[bool, typer.Option(help="Validate and report; change nothing.")] = False,
    default_region: Annotated[
        str | None, typer.Option(help="Region of phone numbers without a country code.")
    ] = None,
    allow_resubscribe: Annotated[
        bool, typer.Option(help="Also resubscribe people who unsubscribed themselves.")
    ] = False,
    errors: Annotated[
        Path | None, typer.Option(help="Error report path (default: FILE.errors.csv).")
    ] = None,
) -> None:
    """Import profiles and subscription states; rejected rows go to an error report CSV."""
    tune_runtime()  # validation allocates objects per cell: collect rarely, skip start-up objects
    current = settings()
    region = (default_region or current.default_region).upper()
    report_path = errors or file.with_name(file.stem + ".errors.csv")
    report = CsvErrorReport(report_path)
    db = database()
    started = time.perf_counter()
    job = CsvImport(file_digest(file), now_ms(), region, allow_resubscribe)
    big = file.stat().st_size >= ALONGSIDE_BYTES  # small files: two more processes cost more
    alongside = Follower() if big and not dry_run else contextlib.nullcontext()
    with alongside as follower, db.session() as conn, file.open("rb") as fh, progress_bar() as bar:
        builtin = store.builtin_source_id(conn)
        if conn.dialect == "sqlite" and follower is not None:  # three processes share memory
            conn.execute(f"PRAGMA cache_size=-{CACHE_KB}")
        task = bar.add_task(file.name, total=file.stat().st_size or 1)

        def refused(changes: list[Change]) -> set[int]:
            return refused_indexes(changes, lambda keys: store.load_states(conn, keys))

        try:
            with batches.Appender(db, builtin, now_ms) as appender:
                result = run_import(
                    fh,
                    job,
                    refused,
                    None if dry_run else appender.put,
                    report,
                    progress=lambda: bar.update(task, completed=fh.tell()),
                    erased=lambda values: suppress.matching(conn, values),
                )
            result.stored = appender.stored
        finally:
            report.close()
            job.close()
        bar.update(task, completed=file.stat().st_size or 1)
        appended = time.perf_counter() - started
        if follower is not None and not follower.finish():
            console.print("[yellow]the processors' process failed; catching up here[/]")
        if not dry_run:  # nothing left unless the follower failed; its error shows here then
            run_until_caught_up(conn, registry.processors(current), window=5_000)
    applied = time.perf_counter() - started
    verb = "would apply" if dry_run else "applied"
    console.print(
        f"rows read {result.rows_read} · {verb} {result.rows_applied} "
        f"({result.changes} changes, {result.stored} new events) · rejected {result.rows_rejected}",
        highlight=False,
    )
    if follower is not None:
        peaks = " + ".join(str(mb) for mb in follower.peaks_mb)
        own = peak_rss_mb()
        console.print(
            f"processors ran alongside (peak RSS {peaks} MB; importer {own} MB)", highlight=False
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = " + ".join(f"{s:.1f}" for s in follower.cpu_s)
        console.print(
            f"stored in {appended:.1f} s, applied in {applied:.1f} s (CPU: importer "
            f"{usage.ru_utime + usage.ru_stime:.1f} s, processors {cpu} s)",
            highlight=False,
        )
        named = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(follower.cpu_by_name.items()))
        console.print(f"processors' CPU by processor: {named}", highlight=False, soft_wrap=True)
    if report.count:
        console.print(
            f"[yellow]error report: {report_path}[/] ({report.count} errors)", highlight=False
        )


def register(app: typer.Typer) -> None:
    """Attach ``template`` (``import subscriptions`` registers on import_app)."""
    app.add_typer(template_app, name="template")
