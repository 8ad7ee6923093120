"""``engagehub people erase|export|erasure|resume``: privacy requests from the command line."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from engagehub.privacy import erase, export, requests

people_app = typer.Typer(help="Privacy requests: erase or export a person.", no_args_is_help=True)


@people_app.command("erase")
def erase_command(
    key: Annotated[str, typer.Argument(help="Any identifier: user id, email, phone, vendor id.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept with the erasure).")] = None,
) -> None:
    """Erase the whole profile KEY resolves to, now; prints the erasure's id and counts."""
    from engagehub import registry
    from engagehub.cli.common import console, database, settings
    from engagehub.processing import run_until_caught_up

    db = database()
    cfg = settings()
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(cfg))  # identities in flight first
        job = erase.request(conn, key, reason, "cli:" + getpass.getuser(), cfg.default_region)
    console.print(f"erasure {job['id']} requested", highlight=False)
    done = erase.run(db, job["id"], cfg)
    console.print(
        f"erasure {done['id']}: {done['state']}; removed {done['counts']}", highlight=False
    )


@people_app.command("erasure")
def erasure_state(
    erasure_id: Annotated[str, typer.Argument(help="The id erase printed.")],
) -> None:
    """An erasure's state and counts, as JSON."""
    from engagehub.cli.common import database

    with database().session() as conn:
        print(orjson.dumps(erase.get(conn, erasure_id)).decode())


@people_app.command("resume")
def resume() -> None:
    """Finish every erasure a crash interrupted (``serve`` does this by itself)."""
    from engagehub.cli.common import console, database, settings

    db = database()
    with db.session() as conn:
        waiting = erase.unfinished(conn)
    for eid in waiting:
        done = erase.run(db, eid, settings())
        console.print(f"erasure {eid}: {done['state']}", highlight=False)
    if not waiting:
        console.print("no unfinished erasure")


@people_app.command("export")
def export_command(
    key: Annotated[str, typer.Argument(help="Any identifier of the person.")],
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    as_zip: Annotated[
        bool, typer.Option("--zip", help="The same document in a zip (large histories).")
    ] = False,
) -> None:
    """Everything held on a person as one JSON document (streamed)."""
    from engagehub.cli.common import database, settings

    db = database()
    parts = export.document_from(db, key, settings().default_region)
    first = next(parts)  # an unknown person fails before anything is written
    stream = sys.stdout.buffer if out is None else out.open("wb")
    try:
        whole = export.prepend(first, parts)
        for part in export.zipped(whole) if as_zip else whole:
            stream.write(part)
    finally:
        if out is not None:
            stream.close()
        else:
            stream.flush()


@people_app.command("requests")
def requests_command(
    state: Annotated[
        str | None, typer.Option(help="pending, erasing, dismissed or gone (default: all).")
    ] = "pending",
    decide: Annotated[
        str | None, typer.Option(help="confirm or dismiss the request ID names.")
    ] = None,
    request_id: Annotated[str | None, typer.Argument(help="A request id (vr_...).")] = None,
) -> None:
    """Erasure requests vendors sent (Braze, Segment): list them, or confirm/dismiss one."""
    from engagehub import registry
    from engagehub.cli.common import console, database, settings
    from engagehub.errors import PayloadError
    from engagehub.processing import run_until_caught_up

    db = database()
    cfg = settings()
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(cfg))
        if decide is None:
            print(orjson.dumps(requests.listing(conn, state or None)).decode())
            return
        if request_id is None:
            raise PayloadError("--decide needs the request id", field="request_id")
        who = "cli:" + getpass.getuser()
        found = requests.decide(conn, request_id, decide, who, cfg.default_region)
    console.print(f"erasure request {request_id}: {found['state']}", highlight=False)
    if "erasure" in found:
        done = erase.run(db, found["erasure"]["id"], cfg)
        console.print(f"erasure {done['id']}: {done['state']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``people``."""
    app.add_typer(people_app, name="people")
