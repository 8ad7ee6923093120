"""Export to S3-compatible storage: moto's real S3 server on a loopback port, via fsspec/s3fs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import duckdb
import fsspec
import pytest
from moto.server import ThreadedMotoServer

from engagehub.export import runner
from engagehub.storage import Database
from tests.destinations.conftest import add_events, free_port


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    # what FSSPEC_S3_ENDPOINT_URL=... does for the CLI
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": url})
    try:
        yield url
    finally:
        server.stop()


def test_export_to_s3(db: Database, s3_endpoint: str) -> None:
    fs = fsspec.filesystem("s3", endpoint_url=s3_endpoint, skip_instance_cache=True)
    bucket = "lake-" + secrets.token_hex(4)  # moto keeps state per process: a fresh bucket
    fs.mkdir(bucket)
    add_events(db, 20)
    with db.session() as conn:
        first = runner.run(conn, f"s3://{bucket}/engage")
    assert first.events == 20
    add_events(db, 4, start=20)
    with db.session() as conn:
        second = runner.run(conn, f"s3://{bucket}/engage")
    assert (second.after, second.upto) == (20, 24)
    keys = fs.find(f"{bucket}/engage")
    name = "event_type=Email Opened/date=2025-11-24-16/seq-000000000001-000000000020.parquet"
    assert f"{bucket}/engage/{name}" in keys
    con = duckdb.connect()
    con.register_filesystem(fs)
    rows = con.sql(
        "SELECT event_type, count(*), count(DISTINCT seq) FROM "
        f"read_parquet('s3://{bucket}/engage/**/*.parquet', hive_partitioning = true) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("Channel Subscription Updated", 6),
        ("Email Delivered", 6),
        ("Email Opened", 6),
        ("SMS Delivered", 6),
    ]
    assert all(r[1] == r[2] for r in rows)
