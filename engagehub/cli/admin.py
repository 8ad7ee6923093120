"""Operator commands: ``migrate``, ``reprocess``, ``admin-token``, ``taxonomy``."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from engagehub import registry
from engagehub.access.admin_token import rotate_admin_token
from engagehub.cli.common import console, database, settings
from engagehub.errors import NotFound
from engagehub.processing import reset, run_until_caught_up
from engagehub.storage import migrate as run_migrations
from engagehub.storage import open_database
from engagehub.taxonomy import get_taxonomy


def migrate() -> None:
    """Create or upgrade the schema (serve does this on start too)."""
    db = open_database(settings().database_url, settings())
    with db.session() as conn:
        applied = run_migrations(conn)
    if applied:
        for m in applied:
            console.print(f"applied {m.version:04d} {m.name}", highlight=False)
    else:
        console.print("schema is up to date")


def reprocess(
    name: Annotated[str, typer.Argument(help="Processor name; see `engagehub reprocess --help`.")],
) -> None:
    """Rebuild one processor's derived tables from the whole log."""
    processors = {p.name: p for p in registry.processors(settings())}
    if name not in processors:
        raise NotFound(f"no processor named {name!r}", known=", ".join(sorted(processors)))
    db = database()
    with db.session() as conn:
        reset(conn, processors[name])
        run_until_caught_up(conn, [processors[name]])
    console.print(f"{name}: rebuilt from the log")


def admin_token(
    rotate: Annotated[bool, typer.Option("--rotate", help="Generate a new stored token.")] = False,
) -> None:
    """Show how the admin token is set, or rotate the stored one (prints it once)."""
    if settings().admin_token is not None:
        console.print("the admin token comes from ENGAGEHUB_ADMIN_TOKEN")
        return
    if not rotate:
        console.print("a generated token is stored (hashed); use --rotate to make a new one")
        return
    db = database()
    with db.session() as conn:
        _, token = rotate_admin_token(conn)
    console.print(f"new admin token (shown once): {token}", highlight=False, soft_wrap=True)


def taxonomy(
    as_json: Annotated[bool, typer.Option("--json", help="Print the taxonomy as JSON.")] = False,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
) -> None:
    """List canonical events with the vendor names mapped to each."""
    data = get_taxonomy().as_dict()
    if as_json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(
        "event", "channel", "action", "vendor names", title=f"taxonomy v{data['version']}"
    )
    for ev in data["events"]:
        if channel and ev["channel"] != channel:
            continue
        names = "; ".join(f"{v}: {', '.join(n)}" for v, n in ev["vendor_names"].items())
        table.add_row(ev["name"], ev["channel"], ev["action"], names)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach the operator commands."""
    app.command()(migrate)
    app.command()(reprocess)
    app.command("admin-token")(admin_token)
    app.command()(taxonomy)
