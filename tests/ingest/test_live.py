"""End to end over real HTTP: the official Segment client, and durability under kill -9."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from segment.analytics import Client

from engagehub.storage import Database
from engagehub.storage import events as log
from tests.conftest import ADMIN_TOKEN, make_source
from tests.live import live_server


@pytest.mark.parametrize("gzip", [False, True])
def test_official_segment_client_works_unchanged(
    database_url: str, db: Database, gzip: bool
) -> None:
    _, key = make_source(db)
    env = {"ENGAGEHUB_DATABASE_URL": database_url, "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    with live_server(env) as server:
        errors: list[object] = []
        client = Client(
            key,
            host=server.url,
            sync_mode=True,
            gzip=gzip,
            max_retries=0,
            on_error=lambda e, batch: errors.append(e),
        )
        client.identify("user-1", {"email": "ada@example.com", "plan": "pro"})
        client.track("user-1", "Email Opened", {"campaign_id": "c1", "email_id": "m1"})
        client.track("user-1", "Order Completed", {"revenue": 10})
        client.page("user-1", "Docs", "Pricing", {"url": "https://example.com/pricing"})
        client.flush()
        assert errors == []
    with db.session() as conn:
        events = log.read_range(conn, 0, 100)
    assert [(e.type, e.event, e.vendor_event) for e in events] == [
        ("identify", None, None),
        ("track", "Email Opened", "Email Opened"),
        ("track", None, "Order Completed"),
        ("page", None, "Pricing"),
    ]
    assert events[0].contact == "ada@example.com"
    assert events[1].message_id == "m1"
    assert events[1].campaign_id == "c1"


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kill.db"
    env = {"ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with live_server(env) as server:
        key = httpx.post(
            f"{server.url}/api/sources",
            json={"name": "k", "kind": "segment"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()["write_key"]

        def sender(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=5) as http:
                i = 0
                while not stop.is_set():
                    ids = [f"t{n}-{i}-{j}" for j in range(50)]
                    batch = [
                        {"type": "track", "event": "Email Delivered", "userId": "u", "messageId": m}
                        for m in ids
                    ]
                    try:
                        r = http.post("/v1/batch", json={"batch": batch, "writeKey": key})
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        with lock:
                            acked.extend(ids)
                    i += 1

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        while len(acked) < 2_000:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for t in threads:
            t.join()
    from engagehub.storage import open_database

    database = open_database(url)
    with database.session() as conn:
        keys = {e.dedup_key for e in log.read_range(conn, 0, 10**9)}
    database.close()
    missing = set(acked) - keys
    assert not missing, f"{len(missing)} acknowledged events lost"
    # The server comes back on the same file and keeps accepting.
    with live_server(env) as server:
        r = httpx.post(
            f"{server.url}/v1/batch",
            json={
                "batch": [{"type": "track", "event": "X", "userId": "u", "messageId": "after"}],
                "writeKey": key,
            },
        )
        assert r.status_code == 200
