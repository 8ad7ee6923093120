"""Messaging commands: ``templates add/list/preview``, ``send-test``, ``audiences``,
``broadcasts create/start/pause/resume/status/run``, ``journeys add/list/show``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from engagehub import registry
from engagehub.cli.common import console, database, settings
from engagehub.consent.model import contact_for
from engagehub.errors import PayloadError
from engagehub.messaging import audiences, broadcasts, journeys, sender, templates
from engagehub.messaging.delivery import Sender, send_now
from engagehub.processing import run_until_caught_up
from engagehub.profiles import store as profiles

templates_app = typer.Typer(help="Message templates (Liquid).", no_args_is_help=True)
audiences_app = typer.Typer(help="Saved audiences.", no_args_is_help=True)
broadcasts_app = typer.Typer(help="Broadcasts: a template to an audience.", no_args_is_help=True)
journeys_app = typer.Typer(help="Journeys: trigger, waits, sends, goal.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON file.")]


def _read(file: Path) -> dict[str, Any]:
    fmt = "json" if file.suffix.lower() == ".json" else "yaml"
    return templates.parse_file(file.read_text(encoding="utf-8"), fmt)


def _json_arg(value: str | None, name: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"{name} is not JSON: {exc}", field=name, value=value) from None
    if not isinstance(data, dict):
        raise PayloadError(f"{name} must be a JSON object", field=name, value=value)
    return data


def _print(data: Any) -> None:
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@templates_app.command("add")
def templates_add(
    file: FileArg,
    name: Annotated[str | None, typer.Option(help="Overrides the file's name.")] = None,
) -> None:
    """Create or replace a template from a file (name, channel, subject/html/text or body)."""
    data = _read(file)
    if name:
        data["name"] = name
    try:
        tpl = templates.TemplateIn.model_validate(data)
    except ValueError as exc:
        raise PayloadError(f"invalid template {file.name}: {exc}", file=str(file)) from None
    with database().session() as conn:
        saved = templates.save(conn, tpl)
    console.print(f"template [bold]{saved['name']}[/] saved ({saved['channel']}, {saved['kind']})")


@templates_app.command("list")
def templates_list() -> None:
    """Every template."""
    with database().session() as conn:
        rows = templates.list_all(conn)
    table = Table("name", "channel", "kind", "group", "updated")
    for t in rows:
        table.add_row(
            t["name"], t["channel"], t["kind"], t["subscription_group"] or "", t["updated_at"]
        )
    console.print(table)


@templates_app.command("preview")
def templates_preview(
    name: Annotated[str, typer.Argument(help="Template name.")],
    profile: Annotated[str | None, typer.Option(help="Profile id, email, phone...")] = None,
    traits: Annotated[str | None, typer.Option(help="Traits as a JSON object.")] = None,
    event: Annotated[str | None, typer.Option(help="Event properties as JSON.")] = None,
    lenient: Annotated[bool, typer.Option(help="Render missing tags empty.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Render a template; strict by default (missing merge tags are an error naming each)."""
    from engagehub.messaging.preview import PreviewIn, preview

    body = PreviewIn(
        profile=profile,
        traits=_json_arg(traits, "traits"),
        event=_json_arg(event, "event"),
        strict=not lenient,
    )
    with database().session() as conn:
        out = preview(conn, settings(), name, body)
    if as_json:
        _print(out)
        return
    if out["channel"] == "email":
        console.print(f"[bold]Subject:[/] {out['subject']}")
        if out.get("text") is not None:
            console.print("[bold]Text:[/]", out["text"], markup=False)
        if out.get("html") is not None:
            console.print("[bold]HTML:[/]", out["html"], markup=False)
    else:
        info = out["sms"]
        console.print(out["body"], markup=False)
        console.print(
            f"[bold]{info['encoding']}[/], {info['length']} characters, "
            f"{info['segments']} segment(s) of up to {info['per_segment']}"
        )
    if out.get("missing"):
        console.print(f"[yellow]missing merge tags:[/] {', '.join(out['missing'])}")


def send_test(
    template: Annotated[str, typer.Argument(help="Template name.")],
    to: Annotated[str, typer.Option("--to", help="Email address or phone number to send to.")],
    profile: Annotated[
        str | None, typer.Option(help="Use this profile's traits (id, email, phone...).")
    ] = None,
    traits: Annotated[str | None, typer.Option(help="Extra traits as JSON.")] = None,
    event: Annotated[str | None, typer.Option(help="Event properties as JSON.")] = None,
) -> None:
    """Send a test message (subject marked [TEST]; no subscription needed; missing tags empty)."""
    current = settings()
    db = database()
    with db.session() as conn:
        tpl = templates.load(conn, template)
        try:
            address = contact_for(tpl.channel, to, current.default_region)
        except PayloadError as exc:
            raise PayloadError(exc.message, field="to", value=to) from None
        data = {}
        if profile:
            pid = profiles.find(conn, profile, current.default_region)
            data = dict(profiles.view(conn, pid).get("traits") or {})
        data.update(_json_arg(traits, "traits"))
        context = {"test": True, "traits": data, "event": _json_arg(event, "event")}
        with conn.transaction():
            mid = sender.enqueue(conn, tpl.name, tpl.channel, address, context, transactional=True)
    job = asyncio.run(send_now(db, current, mid))
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(current))
    if job is None or job.outcome != "sent":
        reason = job.error if job else "not sent"
        raise PayloadError(f"test send failed: {reason}", message_id=mid, to=address)
    console.print(f"sent test of [bold]{tpl.name}[/] to {address} (message id {mid})")
    if tpl.channel == "sms" and job.accepted:
        console.print(job.accepted.raw.get("status", ""))


@audiences_app.command("add")
def audiences_add(file: FileArg) -> None:
    """Save an audience from a file (name, channel, traits, performed, not_performed)."""
    try:
        aud = audiences.AudienceIn.model_validate(_read(file))
    except ValueError as exc:
        raise PayloadError(f"invalid audience {file.name}: {exc}", file=str(file)) from None
    with database().session() as conn:
        audiences.save(conn, aud)
        size = len(audiences.members(conn, aud))
    console.print(f"audience [bold]{aud.name}[/] saved: {size} member(s) now")


@audiences_app.command("show")
def audiences_show(name: Annotated[str, typer.Argument(help="Audience name.")]) -> None:
    """An audience's definition and current size."""
    with database().session() as conn:
        aud = audiences.load(conn, name)
        members = audiences.members(conn, aud)
    _print({**aud.model_dump(), "size": len(members), "sample": members[:20]})


@broadcasts_app.command("create")
def broadcasts_create(
    name: Annotated[str, typer.Argument(help="Broadcast name.")],
    template: Annotated[str, typer.Option(help="Template name.")],
    audience: Annotated[str, typer.Option(help="Audience name.")],
    rate: Annotated[float, typer.Option(help="Messages per second.")] = 100.0,
    start_at: Annotated[
        str | None,
        typer.Option("--start-at", help="Schedule it: ISO 8601 (UTC without offset) or epoch."),
    ] = None,
) -> None:
    """Create a draft broadcast, or a scheduled one with --start-at."""
    b = broadcasts.BroadcastIn(
        name=name, template=template, audience=audience, rate_per_second=rate, start_at=start_at
    )
    with database().session() as conn:
        _print(broadcasts.create(conn, b))


def _act(name: str, fn: Any) -> None:
    with database().session() as conn:
        _print(fn(conn, name))


@broadcasts_app.command("start")
def broadcasts_start(name: Annotated[str, typer.Argument(help="Broadcast name.")]) -> None:
    """Snapshot the audience; a running ``serve`` (or ``broadcasts run``) sends it."""
    _act(name, broadcasts.start)


@broadcasts_app.command("schedule")
def broadcasts_schedule(
    name: Annotated[str, typer.Argument(help="Broadcast name.")],
    at: Annotated[str, typer.Argument(help="ISO 8601 (UTC without offset) or epoch.")],
) -> None:
    """Start a draft by itself at a time (a running ``serve`` starts it)."""
    _act(name, lambda c, n: broadcasts.schedule(c, n, at))


@broadcasts_app.command("unschedule")
def broadcasts_unschedule(name: Annotated[str, typer.Argument(help="Broadcast name.")]) -> None:
    """Make a scheduled broadcast a draft again."""
    _act(name, lambda c, n: broadcasts.act(c, n, "unschedule"))


@broadcasts_app.command("pause")
def broadcasts_pause(name: Annotated[str, typer.Argument(help="Broadcast name.")]) -> None:
    """Stop sending; messages in flight finish."""
    _act(name, lambda c, n: broadcasts.set_state(c, n, "paused"))


@broadcasts_app.command("resume")
def broadcasts_resume(name: Annotated[str, typer.Argument(help="Broadcast name.")]) -> None:
    """Continue a paused broadcast."""
    _act(name, lambda c, n: broadcasts.set_state(c, n, "running"))


@broadcasts_app.command("status")
def broadcasts_status(
    name: Annotated[str | None, typer.Argument(help="Broadcast name (all when omitted).")] = None,
) -> None:
    """Progress of one broadcast (JSON), or a table of all."""
    with database().session() as conn:
        if name:
            _print(broadcasts.status(conn, name))
            return
        rows = broadcasts.list_all(conn)
    table = Table("name", "state", "recipients", "sent", "dropped", "failed", "progress")
    for b in rows:
        c = b["counts"]
        table.add_row(
            b["name"],
            b["state"],
            str(b["recipients"]),
            str(c.get("sent", 0)),
            str(c.get("dropped", 0)),
            str(c.get("failed", 0)),
            f"{b['progress']:.1%}",
        )
    console.print(table)


@broadcasts_app.command("run")
def broadcasts_run(name: Annotated[str, typer.Argument(help="Broadcast name.")]) -> None:
    """Send a running broadcast in the foreground (a worker without ``serve``) until done."""
    from engagehub.cli.imports import progress_bar
    from engagehub.messaging.service import Bucket

    current = settings()
    db = database()
    with db.session() as conn:
        info = broadcasts.status(conn, name)
    bucket = Bucket(float(info["rate_per_second"]))
    out = Sender(current)
    with progress_bar() as bar:
        task = bar.add_task(name, total=info["recipients"])
        while True:
            with db.reader() as conn:
                info = broadcasts.status(conn, name)
            done = sum(info["counts"].get(s, 0) for s in ("sent", "dropped", "failed"))
            bar.update(task, completed=done)
            if info["state"] != "running":
                break
            allowed = bucket.take(current.send_batch)
            sent = out.run_batch(db, allowed, broadcast=info["id"]) if allowed else []
            if allowed and len(sent) < allowed:
                with db.writer() as conn:
                    broadcasts.finish_done(conn, info["id"])
            if not sent:
                time.sleep(0.05)
    out.close()
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(current))
    _print(info)


@journeys_app.command("add")
def journeys_add(file: FileArg) -> None:
    """Create a journey from a YAML/JSON file."""
    try:
        j = journeys.JourneyIn.model_validate(_read(file))
    except ValueError as exc:
        raise PayloadError(f"invalid journey {file.name}: {exc}", file=str(file)) from None
    with database().session() as conn:
        journeys.save(conn, j)
    console.print(f"journey [bold]{j.name}[/] saved ({len(j.steps)} steps)")


@journeys_app.command("show")
def journeys_show(name: Annotated[str, typer.Argument(help="Journey name.")]) -> None:
    """A journey, its counts and the people in it."""
    with database().session() as conn:
        _print({**journeys.describe(conn, name), "people": journeys.runs(conn, name)})


def register(app: typer.Typer) -> None:
    """Attach the messaging command groups and ``send-test``."""
    app.add_typer(templates_app, name="templates")
    app.command("send-test")(send_test)
    app.add_typer(audiences_app, name="audiences")
    app.add_typer(broadcasts_app, name="broadcasts")
    app.add_typer(journeys_app, name="journeys")
