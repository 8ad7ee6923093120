"""A real full filesystem under SQLite (a small tmpfs this test mounts as root): ingest answers
503 with Retry-After, loses nothing it acknowledged, and recovers when space returns."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engagehub.app import create_app
from engagehub.settings import Settings
from tests.conftest import ADMIN_SECRET, ADMIN_TOKEN, assert_error
from tests.hardening.faults.load import stored_keys


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem has no space left."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()
    return filler


def batch(key: str, start: int, n: int = 50) -> dict[str, object]:
    pad = "x" * 400
    events = [
        {
            "type": "track",
            "event": "Email Opened",
            "userId": "u",
            "messageId": f"m{i}",
            "properties": {"pad": pad},
        }
        for i in range(start, start + n)
    ]
    return {"batch": events, "writeKey": key}


def test_disk_full_answers_503_and_recovers(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk}/full.db"
    settings = Settings(database_url=url, admin_token=ADMIN_SECRET)
    acked: set[str] = set()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        key = client.post("/api/sources", json={"name": "d", "kind": "segment"}, headers=admin)
        key_text = key.json()["write_key"]
        assert client.post("/v1/batch", json=batch(key_text, 0)).status_code == 200
        acked.update(f"m{i}" for i in range(50))
        filler = fill(small_disk)
        full = None
        for round_ in range(1, 60):
            response = client.post("/v1/batch", json=batch(key_text, round_ * 50))
            if response.status_code == 200:
                acked.update(f"m{i}" for i in range(round_ * 50, round_ * 50 + 50))
                continue
            full = response
            break
        assert full is not None, "the disk never filled up"
        details = assert_error(full, 503, "unavailable")
        assert "full" in str(details).lower() or "disk" in str(details).lower(), details
        assert int(full.headers["Retry-After"]) >= 1
        assert client.get("/healthz").status_code == 200  # the process stays up
        filler.unlink()  # space returns
        again = client.post("/v1/batch", json=batch(key_text, 10_000))
        assert again.status_code == 200, again.text
        acked.update(f"m{i}" for i in range(10_000, 10_050))
        assert client.get("/readyz").status_code == 200
    keys = stored_keys(url)
    assert acked <= set(keys)
    assert len(keys) == len(set(keys))
