"""``engagehub bench ...``: benchmarks that print figures and same-run baseline ratios."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from engagehub.cli.common import console

bench_app = typer.Typer(help="Benchmarks (figures against baselines measured in the same run).")


@bench_app.command("ingest")
def ingest(
    duration: Annotated[float, typer.Option(help="Seconds of measured load.")] = 15.0,
    concurrency: Annotated[int, typer.Option(help="Keep-alive connections.")] = 32,
    batch_size: Annotated[int, typer.Option(help="Events per /v1/batch request.")] = 100,
    synchronous: Annotated[
        str, typer.Option(help="SQLite synchronous: NORMAL or FULL.")
    ] = "NORMAL",
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Segment batches into `engagehub serve` on SQLite vs no-op HTTP and raw SQLite ceilings."""
    from engagehub.bench.ingest import run

    figures = run(duration, concurrency, batch_size, synchronous.upper(), workers)
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table("figure", "value", title="engagehub bench ingest")
    for key, value in figures.items():
        shown = (
            f"{value:,.2f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        table.add_row(key, shown)
    console.print(table)


@bench_app.command("webhooks")
def webhooks(
    duration: Annotated[float, typer.Option(help="Seconds of load per path.")] = 5.0,
    concurrency: Annotated[int, typer.Option(help="Keep-alive connections.")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Every vendor webhook path's events/s next to the Segment /v1/batch path (same run)."""
    from engagehub.bench.webhooks import run

    figures = run(duration, concurrency)
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table(
        "path",
        "events/s",
        "ratio vs segment",
        "p99 ms",
        "failures",
        title="engagehub bench webhooks",
    )
    for name, value in figures.items():
        if isinstance(value, dict):
            table.add_row(
                name,
                f"{value['events_per_s']:,.0f}",
                f"{value['ratio_vs_segment']:.2f}",
                f"{value['p99_ms']:.0f}",
                str(value["failures"]),
            )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``bench``."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("broadcast")
def broadcast(
    recipients: Annotated[int, typer.Option(help="Subscribed recipients.")] = 100_000,
    baseline: Annotated[
        int | None, typer.Option(help="Raw aiosmtplib sends for the baseline (default: same).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """A broadcast through a local aiosmtpd: msg/s and peak RSS vs raw aiosmtplib sends."""
    from rich.progress import BarColumn, Progress, TextColumn

    from engagehub.bench.broadcast import run

    with Progress(
        TextColumn("[bold]broadcast"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        disable=as_json,
    ) as bar:
        task = bar.add_task("broadcast", total=recipients)
        figures = run(recipients, baseline or recipients, lambda n: bar.update(task, completed=n))
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table("figure", "value", title="engagehub bench broadcast")
    for key, value in figures.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    console.print(table)
