"""``engagehub events tail [--follow]``: the newest events as a readable Rich table."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer
from rich.table import Table

from engagehub.cli.common import console, database
from engagehub.eventjson import event_json
from engagehub.model import StoredEvent
from engagehub.storage import events as log
from engagehub.storage import logread
from engagehub.storage import sources as source_store
from engagehub.timeutil import format_ts

events_app = typer.Typer(help="Read the event log.", no_args_is_help=True)


def _table(events: list[StoredEvent], names: dict[int, str]) -> Table:
    table = Table("seq", "time", "source", "event", "channel", "user", "message", "campaign")
    for ev in events:
        name = ev.event or f"[yellow]{ev.vendor_event or ev.type}[/] [dim](unmapped)[/]"
        if ev.type != "track":
            name = f"[cyan]{ev.type}[/] {ev.vendor_event or ''}"
        table.add_row(
            str(ev.seq),
            (format_ts(ev.event_time) or "")[:23],
            names.get(ev.source_id, str(ev.source_id)),
            name,
            ev.channel or "",
            ev.user_id or ev.anonymous_id or "",
            ev.message_id or "",
            ev.campaign_id or "",
        )
    return table


@events_app.command("tail")
def tail(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent events.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones.")] = False,
    event: Annotated[str | None, typer.Option(help="Canonical event name.")] = None,
    user_id: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    campaign_id: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    unmapped: Annotated[bool, typer.Option(help="Only names the taxonomy does not map.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 1.0,
) -> None:
    """Print the latest events, oldest first; with --follow, poll for new ones until Ctrl-C."""
    db = database()
    q = logread.EventQuery(
        user_id=user_id,
        event=event,
        channel=channel,
        campaign_id=campaign_id,
        unmapped=True if unmapped else None,
        limit=limit,
    )
    with db.session() as conn:
        names = source_store.names(conn)
        found, _ = logread.query(conn, q)
        found.reverse()
        _print(found, names, as_json)
        last = found[-1].seq if found else log.head(conn)
        try:
            while follow:
                time.sleep(interval)
                q.after_seq, q.cursor = last, None
                fresh, _ = logread.query(conn, q)
                if fresh:
                    names = source_store.names(conn)
                    _print(fresh, names, as_json)
                    last = fresh[-1].seq
        except KeyboardInterrupt:
            pass


def _print(found: list[StoredEvent], names: dict[int, str], as_json: bool) -> None:
    if as_json:
        for ev in found:
            print(orjson.dumps(event_json(ev, names, raw=True)).decode())
    elif found:
        console.print(_table(found, names))


def register(app: typer.Typer) -> None:
    """Attach ``events``."""
    app.add_typer(events_app, name="events")
