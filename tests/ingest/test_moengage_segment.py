"""MoEngage's Segment integration: Segment calls with MoEngage names to a moengage source."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from engagehub.storage import Database
from engagehub.storage import events as log
from tests.cases import CASES
from tests.conftest import assert_error, make_source
from tests.ingest.test_segment_api import basic

BATCH = CASES / "moengage_segment" / "batch.json"


def test_moengage_source_takes_the_segment_api_with_moengage_names(
    client: TestClient, db: Database
) -> None:
    _, key = make_source(db, "moe", "moengage", secret="streams-bearer-secret")
    r = client.post("/v1/batch", content=BATCH.read_bytes(), headers=basic(key))
    assert r.status_code == 200, r.text
    one = {"type": "track", "event": "Email Soft Bounced", "userId": "moe-5", "messageId": "m5",
           "timestamp": "2026-03-04T12:04:00Z", "properties": {"Campaign Id": "c-57"}}  # fmt: skip
    r = client.post("/v1/track", content=orjson.dumps({**one, "writeKey": key}))
    assert r.status_code == 200, r.text
    with db.session() as conn:
        events = {e.dedup_key: e for e in log.read_range(conn, 0, 100)}
    bounce = events["moe-b-1"]
    assert (bounce.event, bounce.campaign_id) == ("Email Bounced", "c-55")
    assert bounce.properties["bounce_type"] == "hard"  # MoEngage's mapping, not Segment's
    assert bounce.properties["campaign_name"] == "Spring"
    assert bounce.contact == "ada@example.com"
    click = events["moe-c-1"]
    assert (click.event, click.properties["url"]) == (
        "Email Link Clicked",
        "https://shop.example.com/spring",
    )
    assert events["moe-s-1"].event == "Email Marked as Spam"
    push = events["moe-p-1"]
    assert (push.event, push.properties["platform"]) == ("Push Opened", "iOS")  # as sent
    assert events["moe-i-1"].type == "identify"
    soft = events["m5"]
    assert (soft.event, soft.properties["bounce_type"]) == ("Email Soft Bounced", "soft")


def test_other_vendor_sources_still_refuse_the_segment_api(
    client: TestClient, db: Database
) -> None:
    _, key = make_source(db, "bz", "braze", secret="currents-bearer-secret")
    r = client.post("/v1/batch", content=BATCH.read_bytes(), headers=basic(key))
    assert_error(r, 403, "forbidden")
