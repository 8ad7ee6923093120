"""``engagehub suppressions list|add|remove|import|export``: the suppression list from a shell."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.consent.store import builtin_source_id
from engagehub.errors import PayloadError
from engagehub.model import IncomingEvent
from engagehub.processing import run_until_caught_up
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.suppression import store
from engagehub.suppression.entries import channel_of, read_csv, validate, write_csv
from engagehub.timeutil import now_ms

suppressions_app = typer.Typer(
    help="The suppression list (apart from consent).", no_args_is_help=True
)


def _apply(db: Database, events: list[IncomingEvent]) -> None:
    """Append operator entries and apply them (processors run inline)."""
    with db.session() as conn:
        with conn.transaction():
            log.append(conn, [log.Batch(builtin_source_id(conn), now_ms(), events)])
        run_until_caught_up(conn, registry.processors(settings()))


def _every(channel: str | None, include_expired: bool) -> list[dict[str, object]]:
    with database().session() as conn:
        return store.every(conn, now_ms(), channel, include_expired=include_expired)


@suppressions_app.command("list")
def list_(
    channel: Annotated[str | None, typer.Option(help="email, sms, whatsapp or push.")] = None,
    include_expired: Annotated[bool, typer.Option(help="Also expired entries.")] = False,
) -> None:
    """Suppressed contact points, with reason and since when."""
    chan = channel_of(channel) if channel else None
    table = Table("contact", "channel", "reason", "detail", "since", "expires", "source")
    for r in _every(chan, include_expired):
        table.add_row(
            *(
                str(r[c] or "")
                for c in ("contact", "channel", "reason", "detail", "since", "expires_at", "source")
            )
        )
    console.print(table)


@suppressions_app.command("add")
def add(
    contact: Annotated[str, typer.Argument(help="Email address, phone number or push token.")],
    channel: Annotated[str, typer.Option(help="email, sms, whatsapp or push.")] = "email",
    reason: Annotated[
        str, typer.Option(help="Why (hard_bounce, spam_complaint, manual...).")
    ] = "manual",
    detail: Annotated[str | None, typer.Option(help="Free text kept with the entry.")] = None,
    expires_at: Annotated[str | None, typer.Option(help="ISO 8601 end (default: never).")] = None,
) -> None:
    """Suppress one contact point."""
    item = {
        "contact": contact,
        "channel": channel,
        "reason": reason,
        "detail": detail,
        "expires_at": expires_at,
    }
    entry = validate(item, settings().default_region, adding=True)
    _apply(database(), [entry.event(now_ms(), f"suppression:cli:{uuid.uuid4().hex}")])
    console.print(f"suppressed {entry.contact} ({entry.channel}): {entry.reason}")


@suppressions_app.command("remove")
def remove(
    contact: Annotated[str, typer.Argument(help="Email address, phone number or push token.")],
    channel: Annotated[str, typer.Option(help="email, sms, whatsapp or push.")] = "email",
) -> None:
    """Take one contact point off the list."""
    entry = validate({"contact": contact, "channel": channel}, settings().default_region, False)
    _apply(database(), [entry.event(now_ms(), f"suppression:cli:{uuid.uuid4().hex}")])
    console.print(f"removed {entry.contact} ({entry.channel})")


@suppressions_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A UTF-8 CSV file.")],
) -> None:
    """Import contact,channel,reason,detail,expires_at rows; bad rows are listed, good applied."""
    text = file.read_text("utf-8-sig")
    call = uuid.uuid4().hex
    now = now_ms()
    good: list[IncomingEvent] = []
    bad = 0
    for number, got in read_csv(text, settings().default_region):
        if isinstance(got, PayloadError):
            bad += 1
            console.print(f"row {number}: {got.message}", style="red")
        else:
            good.append(got.event(now, f"suppression:import:{call}:{number}"))
    if good:
        _apply(database(), good)
    console.print(f"applied {len(good)}, rejected {bad}")
    if bad and not good:
        raise typer.Exit(1)


@suppressions_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    include_expired: Annotated[bool, typer.Option(help="Also expired entries.")] = False,
) -> None:
    """The list as CSV (importable again unchanged)."""
    text = write_csv(_every(None, include_expired))
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, "utf-8")


def register(app: typer.Typer) -> None:
    """Attach ``suppressions``."""
    app.add_typer(suppressions_app, name="suppressions")
