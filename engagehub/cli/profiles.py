"""``engagehub profiles show ID``: one profile, readable."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.panel import Panel
from rich.table import Table

from engagehub.cli.common import console, database, settings
from engagehub.profiles import store

profiles_app = typer.Typer(help="Look up profiles.", no_args_is_help=True)


@profiles_app.command("show")
def show(
    identifier: Annotated[str, typer.Argument(help="Profile id, user id, email, phone...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Identities, traits, subscriptions and latest events of a profile."""
    db = database()
    with db.session() as conn:
        data = store.view(conn, store.find(conn, identifier, settings().default_region))
    if as_json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    ids = "\n".join(f"{i['kind']}: {i['value']}" for i in data["identities"])
    traits = "\n".join(f"{k}: {v}" for k, v in data["traits"].items()) or "(none)"
    console.print(Panel(f"{ids}\n\n[bold]traits[/]\n{traits}", title=f"profile {data['id']}"))
    subs = Table("contact", "channel", "group", "status", "since", "reason", title="subscriptions")
    for s in data["subscriptions"]:
        subs.add_row(
            s["contact"],
            s["channel"],
            s["group"] or "",
            s["status"],
            s["changed_at"] or "",
            s["reason"] or "",
        )
    console.print(subs)
    events = Table("time", "event", "channel", "message", title="latest events")
    for e in data["events"]:
        events.add_row(
            e["timestamp"],
            e["event"] or f"{e['type']} {e['vendor_event'] or ''}",
            e["channel"] or "",
            e["message_id"] or "",
        )
    console.print(events)


def register(app: typer.Typer) -> None:
    """Attach ``profiles``."""
    app.add_typer(profiles_app, name="profiles")
