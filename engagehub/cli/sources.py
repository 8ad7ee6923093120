"""``engagehub sources add|list``: who may send events."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from engagehub.api.sources import check_kind
from engagehub.cli.common import console, database
from engagehub.errors import PayloadError
from engagehub.ingest.cors import check_config
from engagehub.storage import sources as source_store
from engagehub.timeutil import format_ts
from engagehub.vendors import SOURCE_KINDS

sources_app = typer.Typer(help="Create and list sources.", no_args_is_help=True)


@sources_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Unique name; webhook URLs use it.")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(SOURCE_KINDS)}.")],
    write_key: Annotated[
        str | None, typer.Option(help="Use this write key instead of generating one.")
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="Vendor signing secret or public key, where it has one.")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            help='JSON options, e.g. Twilio replies: \'{"replies": {"STOP": "Bye"}}\', browser '
            'origins: \'{"allowed_origins": ["https://shop.example"]}\'.'
        ),
    ] = None,
) -> None:
    """Create a source and print its write key (shown once; only its hash is stored)."""
    check_kind(kind)
    options = parse_config(config)
    db = database()
    with db.session() as conn:
        source, key = source_store.create(conn, name, kind, write_key, secret, options)
    console.print(f"source [bold]{source.name}[/] ({source.kind}) created", highlight=False)
    console.print(f"write key: {key}", highlight=False, soft_wrap=True)


def parse_config(text: str | None) -> dict[str, Any]:
    """``--config`` as a JSON object, or a clear error naming it."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"--config is not JSON: {exc}", field="config") from None
    if not isinstance(value, dict):
        raise PayloadError("--config must be a JSON object", field="config")
    check_config(value)
    return value


@sources_app.command("list")
def list_sources() -> None:
    """Every source with its kind and write key hint."""
    db = database()
    with db.session() as conn:
        found = source_store.list_all(conn)
    table = Table("name", "kind", "write key", "secret", "created", "disabled")
    for s in found:
        table.add_row(
            s.name,
            s.kind,
            s.write_key_hint,
            "yes" if s.secret else "",
            format_ts(s.created_at) or "",
            "yes" if s.disabled else "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``sources``."""
    app.add_typer(sources_app, name="sources")
