"""What the demo prints at the end: what was sent, and where to look."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from engagehub.demo.campaigns import SOURCES
from engagehub.demo.run import Report
from engagehub.demo.scenario import Plan


def summary(console: Console, plan: Plan, report: Report, base_url: str) -> None:
    """A table of events per vendor, then the pages, API calls and commands worth opening."""
    table = Table("vendor", "source", "events sent", title=f"demo week (seed {plan.seed})")
    for kind, name in SOURCES.items():
        count = report.sent[kind] + (report.avro_imported if kind == "braze" else 0)
        table.add_row(kind, name, str(count))
    console.print(table)
    console.print(
        f"{report.requests} signed requests in {report.seconds:.1f} s; "
        f"{len(report.avro_files)} Braze Currents Avro files "
        f"({report.avro_imported} new events, {report.avro_duplicates} already there)",
        highlight=False,
    )
    base = base_url.rstrip("/")
    user = plan.users[0].user_id
    stop = plan.stop_phones[0] if plan.stop_phones else plan.users[0].phone
    lines = [
        f"API docs          {base}/docs",
        f"events            {base}/api/events?source={SOURCES['sendgrid']}",
        f"unmapped names    {base}/api/events/unmapped",
        f"a STOP reply      {base}/api/subscriptions?key={stop.replace('+', '%2B')}",
        f"a customer        engagehub profiles show {user}",
        "the live log      engagehub events tail",
    ]
    if not report.avro_imported and report.avro_files:
        root = report.avro_files[0].parents[2]
        lines.append(
            f"Braze Avro files  engagehub import braze-currents {root} --source {SOURCES['braze']}"
        )
    console.print("[bold]Where to look[/] (the API takes the admin token as a bearer token):")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True)
