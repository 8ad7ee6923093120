"""The scale-out proof: two API processes and two workers on one PostgreSQL, with kill -9.

A signed webhook destination on a local receiver is set up before the load; the workers deliver
to it, and every canonical event stored must reach it at least once, the killed worker's
in-flight batches included.

The same batches (with duplicates inside and across batches) go to both API processes at once;
one API process and one worker are killed with SIGKILL mid-run; senders retry a failed request on
the surviving server, as a vendor would. Afterwards every acknowledged event is stored exactly
once and every processor's derived state matches the log exactly (no window lost or applied
twice).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import pytest

from engagehub import registry
from engagehub.settings import Settings
from engagehub.storage import Database, event_index, migrate, open_database
from engagehub.storage.event_index import KEYED_COLUMNS, key_hash
from tests.conftest import ADMIN_TOKEN, make_source
from tests.destinations.receiver import Receiver, receiver
from tests.live import LiveServer, live_server
from tests.scaleout.procs import wait_caught_up, worker_process

BATCHES = 60
PER_BATCH = 40
OVERLAP = 8  # events of the previous batch repeated in each batch


@dataclass
class ProofRun:
    """What the run did: shared with the checks (and with destination checks added later)."""

    db: Database
    servers: list[LiveServer]
    acked: set[str] = field(default_factory=set)
    attempts: int = 0
    failures: int = 0


def destination_setup(run: ProofRun, hook: Receiver) -> None:
    """Create a webhook destination through the API before any event is sent."""
    body = {"name": "proof-hook", "kind": "webhook", "url": hook.url, "secret": "s3cret"}
    r = httpx.post(
        f"{run.servers[0].url}/api/destinations",
        json={**body, "batch": 50},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text


def wait_delivered(run: ProofRun, hook: Receiver, timeout: float = 90) -> set[str]:
    """Every canonical event in the log reached the receiver (at least once)."""
    with run.db.session() as conn:
        wanted = {
            r["event_id"] for r in conn.all("SELECT event_id FROM events WHERE event IS NOT NULL")
        }
    deadline = time.monotonic() + timeout
    while True:
        got = {e["id"] for body in hook.bodies() for e in body["events"]}
        if wanted <= got or time.monotonic() > deadline:
            return wanted - got
        time.sleep(0.2)


def _batches() -> list[list[dict[str, object]]]:
    rng = random.Random(9)
    out: list[list[dict[str, object]]] = []
    for b in range(BATCHES):
        batch: list[dict[str, object]] = []
        for j in range(PER_BATCH):
            mapped = rng.random() < 0.7
            batch.append(
                {
                    "type": "track",
                    "event": "Email Delivered" if mapped else f"Custom {rng.randrange(3)}",
                    "userId": f"user-{rng.randrange(200)}",
                    "messageId": f"proof-{b}-{j}",
                    "properties": {"campaign_id": f"c{b % 5}", "email_id": f"m-{b}-{j}"},
                }
            )
        if out:
            batch.extend(out[-1][:OVERLAP])  # duplicates across requests
        batch.append(dict(batch[0]))  # and a duplicate inside the request
        out.append(batch)
    return out


def _wait_acked(
    run: ProofRun, lock: threading.Lock, threads: list[threading.Thread], n: int
) -> None:
    """Block until ``n`` distinct events were acknowledged (senders must still be running)."""
    while True:
        with lock:
            if len(run.acked) > n:
                return
        assert any(t.is_alive() for t in threads), "senders finished before the kill"
        threading.Event().wait(0.01)


@pytest.fixture
def pg_db(pg_schema_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL schema of its own."""
    db = open_database(pg_schema_url, Settings(database_url=pg_schema_url))
    with db.session() as conn:
        migrate(conn)
    yield db
    db.close()


def test_two_apis_two_workers_kill_9(pg_schema_url: str, pg_db: Database) -> None:
    _, key = make_source(pg_db)
    api_env = {
        "ENGAGEHUB_DATABASE_URL": pg_schema_url,
        "ENGAGEHUB_ADMIN_TOKEN": ADMIN_TOKEN,
        "ENGAGEHUB_RUN_PROCESSORS": "false",
        "ENGAGEHUB_RUN_SERVICES": "false",
        "ENGAGEHUB_POSTGRES_POOL_SIZE": "2",
        "ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS": "true",  # the receiver is on loopback
    }
    worker_env = {
        "ENGAGEHUB_DATABASE_URL": pg_schema_url,
        "ENGAGEHUB_PROCESSOR_BATCH": "7",
        "ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS": "true",
        "ENGAGEHUB_DESTINATION_BACKOFF_SECONDS": "0.2",
    }
    batches = _batches()
    lock = threading.Lock()
    killed = threading.Event()
    with ExitStack() as stack:
        servers = [stack.enter_context(live_server(api_env)) for _ in range(2)]
        workers = [stack.enter_context(worker_process(worker_env)) for _ in range(2)]
        run = ProofRun(pg_db, servers)
        hook = stack.enter_context(receiver())
        destination_setup(run, hook)

        def send(first: int, order: list[int]) -> None:
            target = first
            with ExitStack() as clients:
                http = [clients.enter_context(httpx.Client(base_url=s.url)) for s in servers]
                for n in order:
                    body = {"batch": batches[n], "writeKey": key}
                    for _attempt in range(4):
                        if killed.is_set():
                            target = 1  # server 0 is gone: retry on the survivor
                        try:
                            r = http[target].post("/v1/batch", json=body, timeout=10)
                        except httpx.HTTPError:
                            with lock:
                                run.failures += 1
                            target = 1 - target
                            continue
                        assert r.status_code == 200, r.text
                        with lock:
                            run.attempts += 1
                            run.acked.update(str(e["messageId"]) for e in batches[n])
                        break

        orders = [random.Random(s).sample(range(BATCHES), BATCHES) for s in range(4)]
        threads = [
            threading.Thread(target=send, args=(i % 2, orders[i]), daemon=True) for i in range(4)
        ]
        for t in threads:
            t.start()
        _wait_acked(run, lock, threads, BATCHES * PER_BATCH // 3)
        killed.set()
        servers[0].kill()
        _wait_acked(run, lock, threads, BATCHES * PER_BATCH * 2 // 3)
        workers[0].kill()
        workers[0].wait(10)
        for t in threads:
            t.join(120)
            assert not t.is_alive()

        expected = {f"proof-{b}-{j}" for b in range(BATCHES) for j in range(PER_BATCH)}
        assert run.acked == expected  # every batch was acknowledged by someone
        names = [p.name for p in registry.processors(Settings())]
        wait_caught_up(pg_db, names)
        assert workers[1].poll() is None, "the surviving worker must still be running"
        missing = wait_delivered(run, hook)
        assert not missing, f"{len(missing)} stored events never reached the destination"

    with pg_db.session() as conn:
        stored = conn.all("SELECT seq, dedup_key, vendor_event, user_id, campaign_id FROM events")
        keys = conn.scalar("SELECT COUNT(*) FROM event_keys")
        unmapped = {
            r["vendor_event"]: r["count"]
            for r in conn.all("SELECT vendor_event, count FROM unmapped_events")
        }
        index = set(event_index.pairs(conn))
        profiles = conn.scalar("SELECT COUNT(*) FROM profile_identities WHERE kind = 'user_id'")

    # Exactly once: every acknowledged event is stored, none twice, keys agree with rows.
    dedup = [r["dedup_key"] for r in stored]
    assert len(dedup) == len(set(dedup)), "an event was stored twice"
    assert set(dedup) == run.acked
    assert keys == len(stored)
    assert len({r["seq"] for r in stored}) == len(stored)

    # Processors: derived state equals what the log implies (double-applied windows overcount).
    want_unmapped: dict[str, int] = {}
    for r in stored:
        if r["vendor_event"] != "Email Delivered":
            want_unmapped[r["vendor_event"]] = want_unmapped.get(r["vendor_event"], 0) + 1
    assert unmapped == want_unmapped
    want_index = {
        (key_hash(KEYED_COLUMNS[column], r[column]), r["seq"])
        for r in stored
        for column in ("user_id", "campaign_id")
    }
    assert want_index <= index
    assert profiles == len({r["user_id"] for r in stored})
