"""``engagehub serve --demo`` fills a real server; ``engagehub demo --url`` reaches a remote one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import httpx

from engagehub.bench.ingest import free_port
from engagehub.demo import week as demo_week
from engagehub.storage import Database
from tests.cli.test_cli import run as cli
from tests.conftest import ADMIN_TOKEN
from tests.demo.test_demo import demo_rows


def test_serve_demo_then_remote_demo(database_url: str, db: Database) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ENGAGEHUB_DATABASE_URL": database_url,
        "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN,
        "ENGAGEHUB_PORT": str(port),
    }
    command = [sys.executable, "-m", "engagehub", "serve", "--demo", "--demo-seed", "9"]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    planned = demo_week.build(9).by_vendor()
    try:
        deadline = time.monotonic() + 60
        while sum(1 for _ in demo_rows(db)) < sum(planned.values()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the demo traffic did not arrive"
            time.sleep(0.2)
        # The same week sent again from outside: sources exist (409), every event is a duplicate.
        url = f"http://127.0.0.1:{port}"
        out = cli(database_url, "demo", "--url", url, "--seed", "9", "--admin-token", ADMIN_TOKEN)
        assert "engagehub import braze-currents" in out.stdout  # Avro files are left to import
        stats = httpx.get(url + "/api/sources", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert {s["name"] for s in stats.json()["sources"]} >= {"demo-segment", "demo-twilio"}
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stderr:
            proc.stderr.close()
    assert Counter(str(r["kind"]) for r in demo_rows(db)) == planned
