"""``engagehub serve --demo`` fills a real server; ``engagehub demo --url`` reaches a remote one."""

from __future__ import annotations

from collections import Counter

import httpx

from engagehub.demo import week as demo_week
from engagehub.storage import Database
from tests.cli.test_cli import run as cli
from tests.conftest import ADMIN_TOKEN
from tests.demo.test_demo import demo_rows
from tests.live import live_server
from tests.waiting import eventually


def test_serve_demo_then_remote_demo(database_url: str, db: Database) -> None:
    env = {"ENGAGEHUB_DATABASE_URL": database_url, "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    args = ("--demo", "--demo-seed", "9", "--log-level", "warning")
    planned = demo_week.build(9).by_vendor()
    with live_server(env, 60, args, ready=False) as server:

        def arrived() -> bool:
            assert server.proc.poll() is None, "the server died"
            return sum(1 for _ in demo_rows(db)) >= sum(planned.values())

        eventually(arrived, 60, 0.2, what="the demo traffic")
        # The same week sent again from outside: sources exist (409), every event is a duplicate.
        url = server.url
        out = cli(database_url, "demo", "--url", url, "--seed", "9", "--admin-token", ADMIN_TOKEN)
        assert "engagehub import braze-currents" in out.stdout  # Avro files are left to import
        stats = httpx.get(url + "/api/sources", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert {s["name"] for s in stats.json()["sources"]} >= {"demo-segment", "demo-twilio"}
    assert Counter(str(r["kind"]) for r in demo_rows(db)) == planned
