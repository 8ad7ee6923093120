"""kill -9 of the server at a random moment under load, on both backends: after a restart and
the clients' retries, every acknowledged event is there exactly once and nothing is doubled.
(tests/ingest/test_live.py checks the SQLite loss half; this adds PostgreSQL, random kill
points and the duplicate half.)"""

from __future__ import annotations

import random
import time

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.hardening.faults.load import Load, stored_keys
from tests.live import live_server


def test_kill_9_at_a_random_point_loses_and_doubles_nothing(database_url: str) -> None:
    env = {"ENGAGEHUB_DATABASE_URL": database_url, "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    rng = random.Random()
    with live_server(env) as server:
        key = httpx.post(
            f"{server.url}/api/sources",
            json={"name": "k9", "kind": "segment"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()["write_key"]
        load = Load(server.url, key)
        threads = load.start(threads=4, seconds=30)
        load.wait_acked(200)
        time.sleep(rng.uniform(0.0, 0.4))  # a random point of the load
        server.kill()
        load.stop.set()
        for t in threads:
            t.join()
    assert not load.statuses.keys() - {200}, load.statuses
    keys = stored_keys(database_url)
    missing = load.acked - set(keys)
    assert not missing, f"{len(missing)} acknowledged events lost"
    with live_server(env) as server:
        load.retry_everything(server.url)
    keys = stored_keys(database_url)
    attempted = {k for ids in load.attempted for k in ids}
    assert len(keys) == len(set(keys)), "duplicates after restart and retries"
    assert set(keys) == attempted
