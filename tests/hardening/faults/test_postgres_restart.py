"""A private PostgreSQL server, restarted under a running engagehub: requests during the outage
get a clean 503, the server recovers on its own, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engagehub.bench.ingest import free_port
from tests.conftest import ADMIN_TOKEN
from tests.hardening.faults.load import Load, stored_keys
from tests.live import live_server


class PrivatePostgres:
    """initdb + pg_ctl in a temporary directory, as user nobody when we are root."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="engagehub-pgr-")
        self.port = free_port()
        self.run: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody")
            self.run = ["runuser", "-u", "nobody", "--"]
        self.data = f"{self.root}/data"
        subprocess.run(
            [*self.run, "initdb", "-D", self.data, "-U", "engagehub", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://engagehub@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self.run,
                "pg_ctl",
                "-D",
                self.data,
                "-l",
                f"{self.root}/log",
                "-w",
                "-t",
                "60",
                "-o",
                options,
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def close(self) -> None:
        subprocess.run(
            [*self.run, "pg_ctl", "-D", self.data, "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.ctl("start")
        yield pg
    finally:
        pg.close()


def test_postgres_restart_mid_run(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    env = {"ENGAGEHUB_DATABASE_URL": private_pg.url, "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    with live_server(env, log=tmp_path / "server.log") as server:  # an outage logs a lot
        key = httpx.post(
            f"{server.url}/api/sources",
            json={"name": "pg", "kind": "segment"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()["write_key"]
        load = Load(server.url, key)
        threads = load.start(threads=2, seconds=40)
        load.wait_acked(100)
        private_pg.ctl("stop", "-m", "fast")
        time.sleep(1.0)  # an outage, with the load still running
        during = httpx.get(f"{server.url}/readyz", timeout=10)
        private_pg.ctl("start")
        before = len(load.acked)
        load.wait_acked(before + 200, timeout=30)  # recovered without a restart of engagehub
        load.stop.set()
        for t in threads:
            t.join()
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert during.status_code == 503, during.text
    assert during.json()["error"]["code"] == "unavailable"
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert load.statuses.get(503, 0) > 0, "the outage was never seen"
    keys = stored_keys(private_pg.url)
    assert load.acked <= set(keys)
    assert len(keys) == len(set(keys))
