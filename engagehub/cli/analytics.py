"""``engagehub goals add|list|edit|remove`` and ``engagehub stats CAMPAIGN`` (the API's numbers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from engagehub.analytics import goals as goal_store
from engagehub.analytics import service, stats
from engagehub.analytics.processor import AnalyticsProcessor
from engagehub.cli.common import console, database
from engagehub.processing import run_until_caught_up
from engagehub.processing.log_index import LogIndex
from engagehub.storage.base import Connection
from engagehub.timeutil import parse_param


@contextlib.contextmanager
def _session() -> Iterator[Connection]:
    """A connection to the migrated database; the database (and its pool) closes after."""
    db = database()
    try:
        with db.session() as conn:
            yield conn
    finally:
        db.close()


goals_app = typer.Typer(help="Conversion goals of campaigns.", no_args_is_help=True)


@goals_app.command("add")
def add(
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign (or journey) id.")],
    event: Annotated[str, typer.Option("--event", help='Goal event name, e.g. "Order Completed".')],
    within: Annotated[str, typer.Option("--within", help="Window after delivery: 72h, 3d...")],
    where: Annotated[
        str | None,
        typer.Option("--where", help="Filter, e.g. \"properties.coupon == 'SPRING'\"."),
    ] = None,
) -> None:
    """Add a goal; goal events already in the log are attributed right away."""
    goal_store.validate(campaign, event, where, within)
    with _session() as conn:
        run_until_caught_up(conn, [AnalyticsProcessor()])
        created = service.add_goal(conn, campaign, event, where, within)
    console.print(
        f"goal {created['id']} added to campaign {campaign}: {event} within "
        f"{created['within']} ({created['backfilled_events']} past goal events)"
    )


@goals_app.command("list")
def list_goals(
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign.")] = None,
) -> None:
    """Every goal."""
    with _session() as conn:
        goals = goal_store.load(conn)
    table = Table("id", "campaign", "event", "where", "within", title="goals")
    for g in goals:
        if campaign is None or g.campaign_id == campaign:
            table.add_row(
                str(g.id),
                g.campaign_id,
                g.event,
                g.where or "",
                goal_store.format_duration(g.within_ms),
            )
    console.print(table)


@goals_app.command("edit")
def edit(
    goal_id: Annotated[int, typer.Argument(help="Goal id.")],
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign (or journey) id.")],
    event: Annotated[str, typer.Option("--event", help='Goal event name, e.g. "Order Completed".')],
    within: Annotated[str, typer.Option("--within", help="Window after delivery: 72h, 3d...")],
    where: Annotated[str | None, typer.Option("--where", help="Filter; omit it for none.")] = None,
) -> None:
    """Replace a goal's definition (same id); its conversions are counted again."""
    goal_store.validate(campaign, event, where, within)
    with _session() as conn:
        run_until_caught_up(conn, [AnalyticsProcessor()])
        changed = service.change_goal(conn, goal_id, campaign, event, where, within)
    console.print(
        f"goal {goal_id} of campaign {campaign}: {event} within {changed['within']} "
        f"({changed['backfilled_events']} past goal events)"
    )


@goals_app.command("remove")
def remove(goal_id: Annotated[int, typer.Argument(help="Goal id.")]) -> None:
    """Delete a goal; messages it converted are re-evaluated."""
    with _session() as conn:
        service.remove_goal(conn, goal_id)
    console.print(f"goal {goal_id} removed")


def stats_command(
    campaign: Annotated[str, typer.Argument(help="Campaign (or journey) id.")],
    from_: Annotated[str | None, typer.Option("--from", help="ISO 8601 or epoch.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="ISO 8601 or epoch (exclusive).")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    variation: Annotated[str | None, typer.Option(help="Only this variation.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """A campaign's stats as a Rich table: the numbers of GET /api/campaigns/{id}/stats."""
    since, until = parse_param(from_, "from"), parse_param(to, "to")
    with _session() as conn:
        run_until_caught_up(conn, [LogIndex(), AnalyticsProcessor()])
        data = stats.campaign_stats(conn, campaign, since, until, channel, variation)
    if as_json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    render(data)


def render(data: dict[str, Any]) -> None:
    """Totals and rates, then breakdown, links, bounce reasons and goals."""
    info = data["campaign"]
    title = f"campaign {info['id']}" + (f" — {info['name']}" if info["name"] else "")
    table = Table("metric", "value", title=title)
    for key, value in data["totals"].items():
        table.add_row(key, str(value))
    for key, value in data["rates"].items():
        table.add_row(key, f"{value:.2%}")
    console.print(table)
    if data["breakdown"]:
        b = Table(
            "channel",
            "variation",
            "step",
            "sent",
            "delivered",
            "opens",
            "clicks",
            "conversions",
            title="breakdown",
        )
        for row in data["breakdown"]:
            t = row["totals"]
            b.add_row(
                row["channel"] or "",
                row["variation"] or "",
                row["step"] or "",
                str(t["sent"]),
                str(t["delivered"]),
                str(t["opens_unique"]),
                str(t["clicks_unique"]),
                str(t["conversions"]),
            )
        console.print(b)
    if data["top_links"]:
        links = Table("url", "unique clicks", "total clicks", title="top links")
        for link in data["top_links"]:
            links.add_row(link["url"], str(link["clicks_unique"]), str(link["clicks_total"]))
        console.print(links)
    if data["bounce_reasons"]:
        reasons = Table("reason", "count", title="bounce reasons")
        for r in data["bounce_reasons"]:
            reasons.add_row(r["reason"], str(r["count"]))
        console.print(reasons)
    if data["goals"]:
        goals = Table("goal", "event", "within", "conversions", title="conversions")
        for g in data["goals"]:
            goals.add_row(
                str(g["id"]),
                "(vendor)" if g["vendor"] else g.get("event", ""),
                g.get("within", ""),
                str(g["conversions"]),
            )
        console.print(goals)


def register(app: typer.Typer) -> None:
    """Attach ``goals`` and ``stats``."""
    app.add_typer(goals_app, name="goals")
    app.command("stats")(stats_command)
