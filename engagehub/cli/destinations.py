"""``engagehub destinations add|list|status|replay|remove``: where canonical events go."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.destinations import store
from engagehub.destinations.api import status_json, statuses
from engagehub.destinations.guard import check_destination
from engagehub.storage import events as log

destinations_app = typer.Typer(help="Deliver canonical events to webhooks, Segment, NATS.")


@destinations_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Unique name.")],
    kind: Annotated[str, typer.Option(help="webhook, segment or nats.")],
    url: Annotated[str, typer.Option(help="https://... webhook, Segment base URL, nats://...")],
    secret: Annotated[
        str | None, typer.Option(help="Signing secret (whsec_... or text); Segment write key.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="NATS subject (JetStream).")] = None,
    events: Annotated[
        str | None, typer.Option(help='Event name globs, comma-separated, e.g. "Email *".')
    ] = None,
    batch: Annotated[int, typer.Option(help="Events per batch.")] = 100,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Deliver the whole log, not only new events.")
    ] = False,
) -> None:
    """Add a destination (its URL must resolve to public addresses unless allowed)."""
    check_destination(url, kind, secret, settings().allow_private_destinations)
    db = database()
    with db.session() as conn:
        dest = store.create(
            conn, name, kind, url, secret, subject, events, batch, start=0 if from_start else None
        )
    console.print(
        f"destination [bold]{dest.name}[/] ({dest.kind}) added at log position {dest.cursor}",
        highlight=False,
    )


@destinations_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Lag, deliveries, failures and the last error of every destination."""
    db = database()
    with db.session() as conn:
        rows = statuses(conn)
    if as_json:
        print(orjson.dumps(rows).decode())
        return
    table = Table(
        "name", "kind", "lag", "delivered", "failures", "dead", "last error", title="destinations"
    )
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            f"{r['lag']:,}",
            f"{r['delivered']:,}",
            f"{r['failures']:,}",
            f"{r['dead_lettered']:,}",
            (r["last_error"] or "")[:80],
        )
    console.print(table)


@destinations_app.command("replay")
def replay(
    name: Annotated[str, typer.Argument(help="Destination name.")],
    from_time: Annotated[
        str | None, typer.Option("--from", help="Re-send events received from this time on.")
    ] = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="Re-send the batches given up on.")
    ] = False,
) -> None:
    """Rewind a destination (to --from, else the start of the log) or re-queue its dead letters."""
    from_ms = store.parse_from(from_time)
    db = database()
    with db.session() as conn:
        result = store.replay(conn, name, from_ms, dead_letters)
    console.print(orjson.dumps(result).decode(), highlight=False)


@destinations_app.command("deliver")
def deliver() -> None:
    """Deliver everything due now and exit (what `serve` does in the background)."""
    from engagehub.destinations.service import DeliveryService

    db = database()
    service = next(s for s in registry.services(settings()) if isinstance(s, DeliveryService))
    try:
        service.drain(db)
    finally:
        service.close()
    with db.session() as conn:
        head = log.head(conn)
        for dest in store.list_all(conn):
            row = status_json(dest, head)
            console.print(
                f"{row['name']}: lag {row['lag']}, delivered {row['delivered']}, "
                f"last error {row['last_error'] or '-'}",
                highlight=False,
            )


@destinations_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Destination name.")]) -> None:
    """Remove a destination and its dead letters."""
    db = database()
    with db.session() as conn:
        store.delete(conn, name)
    console.print(f"destination [bold]{name}[/] removed", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``destinations``."""
    app.add_typer(destinations_app, name="destinations")
