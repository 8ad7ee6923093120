"""``engagehub processors status|skip``: where each processor is, what fails, quarantine."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.errors import NotFound
from engagehub.processing import health
from engagehub.storage import events as log
from engagehub.storage import followers
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts

processors_app = typer.Typer(help="Log processors: status, failures, quarantined events.")


def status_rows(conn: Connection) -> list[dict[str, object]]:
    """Every follower of the log with its position, lag and recorded failure."""
    head = log.head(conn)
    failing = health.failures(conn)
    skipped = {
        str(r["name"]): int(r["n"])
        for r in conn.all("SELECT name, COUNT(*) AS n FROM processor_skips GROUP BY name")
    }
    known = [p.name for p in registry.processors(settings())]
    positions = followers.positions(conn)
    for name in known:
        positions.setdefault(("processor", name), 0)
    rows: list[dict[str, object]] = []
    for (kind, name), seq in sorted(positions.items()):
        fail = failing.get(name) if kind == "processor" else None
        rows.append(
            {
                "kind": kind,
                "name": name,
                "position": seq,
                "lag": max(0, head - seq),
                "failing_seq": fail["seq"] if fail else None,
                "error": fail["error"] if fail else None,
                "attempts": fail["attempts"] if fail else None,
                "since": format_ts(int(str(fail["first_failed_at"]))) if fail else None,
                "skipped": skipped.get(name, 0),
            }
        )
    return rows


@processors_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Each follower's position and lag; a failing processor with its log position and error."""
    db = database()
    try:
        with db.session() as conn:
            rows = status_rows(conn)
            head = log.head(conn)
    finally:
        db.close()
    if as_json:
        print(orjson.dumps({"head": head, "followers": rows}).decode())
        return
    table = Table(
        "kind", "name", "position", "lag", "failing at", "error", "skipped",
        title=f"log head {head:,}",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            str(r["kind"]),
            str(r["name"]),
            f"{r['position']:,}",
            f"{r['lag']:,}",
            "" if r["failing_seq"] is None else str(r["failing_seq"]),
            str(r["error"] or ""),
            str(r["skipped"] or ""),
        )
    console.print(table)


@processors_app.command("skip")
def skip(
    name: Annotated[str, typer.Argument(help="Processor name.")],
    seq: Annotated[int, typer.Argument(help="Log position of the event it fails on.")],
) -> None:
    """Quarantine the event a processor is stuck on (recorded in processor_skips)."""
    known = {p.name for p in registry.processors(settings())}
    if name.split("#", 1)[0] not in known:  # a shard: ``name#i/n``
        raise NotFound(f"no processor named {name!r}", known=", ".join(sorted(known)))
    db = database()
    try:
        with db.session() as conn:
            result = health.skip(conn, name, seq)
    finally:
        db.close()
    console.print(
        f"{name}: skipped log position {seq} (recorded); error was: {result['error'] or '-'}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Attach ``engagehub processors``."""
    app.add_typer(processors_app, name="processors")
