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


@bench_app.command("csv-import")
def csv_import(
    rows: Annotated[int, typer.Option(help="Rows in the generated file.")] = 1_000_000,
    bad_share: Annotated[float, typer.Option(help="Share of invalid rows.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """`engagehub import subscriptions` rows/s and peak RSS vs csv.reader over the same file."""
    from engagehub.bench.csv_import import run

    _figures("engagehub bench csv-import", run(rows, bad_share), as_json)


@bench_app.command("postgres")
def postgres(
    processes: Annotated[
        str, typer.Option(help="Comma-separated API process counts to measure.")
    ] = "1,2,4",
    duration: Annotated[float, typer.Option(help="Seconds of measured load per count.")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Keep-alive connections.")] = 32,
    batch_size: Annotated[int, typer.Option(help="Events per /v1/batch request.")] = 100,
    url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URL to use (default: start a throwaway server)."),
    ] = None,
    processing_events: Annotated[
        int,
        typer.Option(
            help="Pre-loaded events derived by 1, 2, 4 `engagehub worker`s, and by one worker "
            "with the second count's shards (0: skip)."
        ),
    ] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Ingest events/s with 1, 2, 4 API processes vs a raw COPY, and the processing rate of a
    pre-loaded log with as many workers (same run)."""
    from engagehub.bench.postgres import run
    from engagehub.errors import PayloadError

    try:
        counts = [int(p) for p in processes.split(",") if p.strip()]
    except ValueError:
        raise PayloadError("--processes takes numbers like 1,2,4", value=processes) from None
    if not counts or min(counts) < 1:
        raise PayloadError("--processes takes numbers like 1,2,4", value=processes)
    figures = run(counts, duration, concurrency, batch_size, url)
    if processing_events:
        from engagehub.bench.postgres import run_processing

        figures["processing"] = run_processing(counts, processing_events, url)
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table(
        "API processes",
        "events/s",
        "ratio vs COPY",
        f"ratio vs {counts[0]}",
        "p50 ms",
        "p99 ms",
        "failures",
        "acked = stored",
        title=f"engagehub bench postgres (raw COPY: {figures['copy_rows_per_s']:,.0f} rows/s, "
        f"{figures['cpus']} CPUs)",
    )
    for n in counts:
        f = figures[f"api_{n}"]
        table.add_row(
            str(n),
            f"{f['events_per_s']:,.0f}",
            f"{f['ratio_vs_copy']:.2f}",
            f"{f[f'ratio_vs_{counts[0]}_process']:.2f}",
            f"{f['p50_ms']:.0f}",
            f"{f['p99_ms']:.0f}",
            str(f["failures"]),
            str(f["acked_events"] == f["stored_events"]),
        )
    console.print(table)
    processing = figures.get("processing")
    if processing:
        derived = Table(
            "workers", "shards", "events/s", f"ratio vs {counts[0]}", "seconds",
            "workers CPU s", "PostgreSQL CPU s", "CPU floor s", "idle share", "load", "last cursor",
            title=f"processing a pre-loaded log of {processing['head']:,} positions "
            "(CPU floor: both CPU figures over the cores)",
        )  # fmt: skip
        for key in processing["rows"]:
            f = processing[key]
            pg = f["postgres_cpu_s"]
            derived.add_row(
                str(f["workers"]),
                str(f["shards"]),
                f"{f['events_per_s']:,.0f}",
                f"{f[f'ratio_vs_{counts[0]}_worker']:.2f}",
                f"{f['seconds']:.1f}",
                f"{f['workers_cpu_s']:.1f}",
                "n/a" if pg is None else f"{pg:.1f}",
                f"{f['cpu_floor_s']:.1f}",
                f"{f['machine_idle_share']:.2f}",
                f"{f['load_average_1m']:.1f}",
                next(reversed(f["finished_s"]), ""),
            )
        console.print(derived)


@bench_app.command("analytics")
def analytics(
    events: Annotated[int, typer.Option(help="Events to generate.")] = 10_000_000,
    campaigns: Annotated[int, typer.Option(help="Campaigns they belong to.")] = 1000,
    queries: Annotated[int, typer.Option(help="Random stats queries to time.")] = 200,
    batch: Annotated[int, typer.Option(help="Events bulk-loaded per transaction.")] = 500_000,
    window: Annotated[int, typer.Option(help="Log positions per processor window.")] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Derive analytics from a bulk-loaded log, then stats p50/p95 vs DuckDB over Parquet."""
    from rich.progress import Progress

    from engagehub.bench.analytics import run

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("loading the log", total=events)
        figures = run(events, campaigns, queries, batch, lambda n: bar.advance(task, n), window)
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table("figure", "value", title="engagehub bench analytics (SQLite)")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


def _figures(title: str, figures: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table("figure", "value", title=title)
    for key, value in figures.items():
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


@bench_app.command("export")
def export(
    events: Annotated[int, typer.Option(help="Events in the log to export.")] = 300_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Events/s exported to Parquet vs a raw pyarrow write of the same rows (same run)."""
    from engagehub.bench.export import run

    _figures("engagehub bench export", run(events), as_json)


@bench_app.command("deliver")
def deliver(
    events: Annotated[int, typer.Option(help="Events to deliver.")] = 100_000,
    batch: Annotated[int, typer.Option(help="Events per webhook batch.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Signed webhook delivery events/s to a local receiver vs raw posts of the same bodies."""
    from engagehub.bench.deliver import run

    _figures("engagehub bench deliver", run(events, batch), as_json)


def register(app: typer.Typer) -> None:
    """Attach ``bench``."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("broadcast")
def broadcast(
    recipients: Annotated[int, typer.Option(help="Subscribed recipients.")] = 100_000,
    baseline: Annotated[
        int | None, typer.Option(help="Raw aiosmtplib sends for the baseline (default: same).")
    ] = None,
    links: Annotated[
        int,
        typer.Option(help="Links per email; > 0 also sends it untracked (tracking's baseline)."),
    ] = 0,
    compare_tracking: Annotated[
        bool, typer.Option(help="Also send it untracked (implied by --links > 0).")
    ] = False,
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
        figures = run(
            recipients,
            baseline or recipients,
            lambda n: bar.update(task, completed=n),
            links,
            compare_tracking,
        )
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    table = Table("figure", "value", title="engagehub bench broadcast")
    for key, value in figures.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    console.print(table)


@bench_app.command("e2e")
def e2e(
    events: Annotated[int, typer.Option(help="Events to send (six per message).")] = 200_000,
    synchronous: Annotated[
        str, typer.Option(help="SQLite synchronous modes to run: NORMAL, FULL or both.")
    ] = "both",
    concurrency: Annotated[int, typer.Option(help="Keep-alive connections.")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Acknowledged and end-to-end (every processor's lag back to 0) events/s vs raw SQLite."""
    from engagehub.bench.e2e import run
    from engagehub.errors import PayloadError

    choice = synchronous.upper()
    modes = ("NORMAL", "FULL") if choice == "BOTH" else (choice,)
    if any(m not in ("NORMAL", "FULL") for m in modes):
        raise PayloadError("--synchronous takes NORMAL, FULL or both", value=synchronous)
    figures = run(events, modes, concurrency)
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    _figures("engagehub bench e2e", flatten(figures), False)


def flatten(figures: dict[str, object], prefix: str = "") -> dict[str, object]:
    """Nested figures as one table's rows (``normal.processor_cpu_us_per_event.analytics``);
    text values (the mode's name) are left out."""
    flat: dict[str, object] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, str):
            flat[prefix + key] = value
    return flat
