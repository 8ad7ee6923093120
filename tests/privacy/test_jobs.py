"""Erasure jobs under stress on both backends: kill -9 mid-job (finishes on restart), racing
ingest of the same person, deletion manifests for exports, deletion events for destinations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from engagehub import registry
from engagehub.app import create_app
from engagehub.destinations import store as destinations
from engagehub.export import runner
from engagehub.privacy import erase
from engagehub.processing import run_until_caught_up
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage import events as log
from tests.analytics.helpers import T0
from tests.conftest import ADMIN_TOKEN, make_source
from tests.destinations.receiver import receiver
from tests.privacy.test_erase import ALICE, BOB, fill, story


def alice_rows(db: Database) -> int:
    with db.session() as conn:
        return int(
            conn.scalar(
                "SELECT COUNT(*) FROM events WHERE user_id = ? OR contact = ? OR anonymous_id = ?",
                ALICE,
            )
        )


@pytest.mark.parametrize("stop_after", ["requested", "deleted", "notified"])
def test_kill9_mid_erasure_finishes_on_restart(
    db: Database, settings: Settings, database_url: str, stop_after: str
) -> None:
    fill(db, settings, [(ALICE, "m-alice"), (BOB, "m-bob")])
    env = {**os.environ, "ENGAGEHUB_DATABASE_URL": database_url, erase.PAUSE_ENV: stop_after}
    with subprocess.Popen(
        [sys.executable, "-m", "engagehub", "people", "erase", ALICE[1]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if f"paused after {stop_after}" in line:
                os.kill(proc.pid, signal.SIGKILL)  # in the middle of the job
                break
        assert proc.wait(timeout=30) == -signal.SIGKILL
    with db.session() as conn:
        (eid,) = erase.unfinished(conn)
        assert erase.get(conn, eid)["step"] == stop_after
    # new events of the person are suppressed from the moment of the request
    with db.session() as conn:
        source = int(conn.scalar("SELECT id FROM sources WHERE kind = 'segment'"))
        again = story(ALICE, "m-x")[:-1]
        assert log.append(conn, [log.Batch(source, T0, again)])[0].inserted == 0
    if stop_after == "deleted":
        assert alice_rows(db) == 0
        app = create_app(settings)  # the server finishes it by itself
        with TestClient(app) as client:
            for _ in range(200):
                r = client.get(
                    f"/api/people/erasures/{eid}",
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                if r.json()["state"] == "done":
                    break
                threading.Event().wait(0.05)
            assert r.json()["state"] == "done", r.text
    else:
        out = subprocess.run(
            [sys.executable, "-m", "engagehub", "people", "resume"],
            env={**os.environ, "ENGAGEHUB_DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert f"erasure {eid}: done" in out.stdout
    with db.session() as conn:
        assert erase.unfinished(conn) == []
        job = erase.get(conn, eid)
        assert (job["state"], job["step"]) == ("done", "wiped")
        assert conn.scalar("SELECT notice FROM privacy_erasures") is None
        assert not conn.scalar("SELECT 1 FROM profile_identities WHERE value = ?", (ALICE[1],))
    assert alice_rows(db) == 0


def test_erasure_racing_ingest_of_the_same_person(db: Database, settings: Settings) -> None:
    fill(db, settings, [(ALICE, "m-alice"), (BOB, "m-bob")])
    source = make_source(db, "racer")[0].id
    started = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            with db.session() as conn:
                for i in range(40):  # the person keeps arriving while the erasure runs
                    batch = [e for e in story(ALICE, f"m-race-{i}") if e.user_id or e.contact]
                    for e in batch:
                        e.dedup_key += f"-{i}"
                    log.append(conn, [log.Batch(source, T0, batch)])
                    started.set()
        except BaseException as exc:
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    assert started.wait(60)
    with db.session() as conn:
        job = erase.request(conn, ALICE[0], None, "test", "US")
    done = erase.run(db, job["id"], settings)
    thread.join(timeout=120)
    assert not errors, errors
    assert done["state"] == "done"
    assert done["counts"]["events"] >= 10
    assert alice_rows(db) == 0
    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(settings))
        assert not conn.scalar("SELECT 1 FROM profile_identities WHERE value = ?", (ALICE[1],))
        assert conn.scalar("SELECT 1 FROM profile_identities WHERE value = ?", (BOB[1],))
    assert alice_rows(db) == 0


def test_export_deletion_manifest_and_fresh_snapshot(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    fill(db, settings, [(ALICE, "m-alice"), (BOB, "m-bob")])
    out = tmp_path / "lake"
    with db.session() as conn:
        first = runner.run(conn, str(out))
    exported = [pq.read_table(f).to_pylist() for f in first.files if f.endswith(".parquet")]
    rows = [r for table in exported for r in table]
    alices = {r["id"] for r in rows if ALICE[1] in orjson.dumps(r, default=str).decode()}
    assert alices
    with db.session() as conn:
        job = erase.request(conn, ALICE[1], None, "test", "US")
    erase.run(db, job["id"], settings)
    with db.session() as conn:
        second = runner.run(conn, str(out))
        third = runner.run(conn, str(out))
    manifest = out / "deletions" / f"erasure-{job['id']}.json"
    assert str(manifest) in second.files
    assert str(manifest) not in third.files
    body = orjson.loads(manifest.read_bytes())
    assert body["format"] == "engagehub.deletion-manifest/1"
    assert alices <= set(body["event_ids"])
    for value in ALICE:
        assert value not in manifest.read_text()
    # the consent snapshot is rewritten without the person: only the newest one counts
    assert second.snapshot is not None
    snap = pq.read_table(second.snapshot).to_pylist()
    assert {r["contact"] for r in snap} == {BOB[1]}


def test_destinations_get_a_deletion_event(db: Database, settings: Settings) -> None:
    fill(db, settings, [(ALICE, "m-alice")])
    allowed = settings.model_copy(update={"allow_private_destinations": True})
    with receiver() as hook, db.session() as conn:
        destinations.create(conn, "crm", "webhook", hook.url, secret="test-secret-123456")
        job = erase.request(conn, ALICE[0], None, "test", "US")
        done = erase.run(db, job["id"], allowed)
        assert done["counts"]["notified"] == ["crm"]
        (got,) = hook.received
        body = got.json()
        (event,) = body["events"]
        assert event["event"] == "User Deleted"
        assert event["user_id"] == ALICE[0]
        assert {i["value"] for i in event["properties"]["identifiers"]} == set(ALICE)
        assert conn.scalar("SELECT notice FROM privacy_erasures") is None
