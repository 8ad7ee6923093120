"""A real ``serve``: JSON log lines (``ENGAGEHUB_LOG_FORMAT=json``), and /metrics summed over
``--workers``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from engagehub.ops.logs import JSONFormatter
from engagehub.storage import Database
from tests.conftest import make_source
from tests.ingest.test_segment_api import basic, track
from tests.live import live_server
from tests.ops.test_metrics import Samples, value


def test_json_logs_from_a_real_server(tmp_path: Path) -> None:
    env = {"ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp_path}/e.db", "ENGAGEHUB_LOG_FORMAT": "json"}
    out = tmp_path / "server.log"
    with live_server(env, 60, ("--access-log", "--log-level", "info"), log=out) as live:
        url = live.url
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/nowhere").status_code == 404
    lines = out.read_text().splitlines()
    records = [orjson.loads(line) for line in lines if line.strip()]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    token = [r for r in records if "admin token" in r["message"]]
    assert token[0]["token"].startswith("eh_")
    access = {(r["path"], r["status"]) for r in records if r["logger"] == "uvicorn.access"}
    assert {("/healthz", 200), ("/nowhere", 404)} <= access
    assert any(r["logger"].startswith("uvicorn") and r["level"] == "info" for r in records)
    assert any(r["message"] == "starting" and r["url"] == url for r in records)


def test_json_formatter_keeps_extra_fields_and_tracebacks() -> None:
    try:
        raise ValueError("boom 42")
    except ValueError:
        record = logging.getLogger("engagehub.x").makeRecord(
            "engagehub.x", logging.ERROR, __file__, 1, "failed %s", ("job",), sys.exc_info()
        )
    record.destination = "s3-archive"
    line = orjson.loads(JSONFormatter().format(record))
    assert line["message"] == "failed job"
    assert line["level"] == "error"
    assert line["destination"] == "s3-archive"
    assert "ValueError: boom 42" in line["exc"]


def test_metrics_sum_every_worker(database_url: str, db: Database, tmp_path: Path) -> None:
    _, key = make_source(db, "web", "segment")
    env = {"ENGAGEHUB_DATABASE_URL": database_url, "ENGAGEHUB_ADMIN_TOKEN": "t" * 20}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with live_server(env, 60, ("--workers", "2", "--log-level", "warning")) as live:
        url = live.url
        for i in range(12):  # a new connection each time: the kernel spreads them over workers
            body = {"batch": [track(f"w{i}")]}
            r = httpx.post(url + "/v1/batch", json=body, headers=basic(key))
            assert r.status_code == 200, r.text
        for _ in range(4):  # whichever worker answers, it reports all of them
            samples: Samples = {}
            for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
                for s in family.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            assert value(samples, "engagehub_events_total", kind="segment", outcome="stored") == 12
