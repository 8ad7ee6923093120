"""``/metrics``: ingest outcomes by kind, refusals by reason, lag, unmapped names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from engagehub.app import create_app
from engagehub.ops import metrics
from engagehub.settings import Settings
from engagehub.storage import Database
from tests.conftest import ADMIN_TOKEN, assert_error, make_source
from tests.demo.test_demo import wait_for_processors
from tests.ingest.test_segment_api import basic, track
from tests.vendors.signing import SendGridSigner

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_ingest_outcomes_and_refusals_are_counted(client: TestClient, db: Database) -> None:
    _, key = make_source(db, "web", "segment")
    signer = SendGridSigner()
    make_source(db, "sg", "sendgrid", secret=signer.public)
    before = scrape(client)
    batch = {"batch": [track("m1"), track("m2", event="Wishlist Shared")]}
    for _ in range(2):  # the retry is all duplicates
        assert client.post("/v1/batch", json=batch, headers=basic(key)).status_code == 200
    partly = {"batch": [track("m3"), {"type": "track", "userId": "u1", "messageId": "m4"}]}
    assert client.post("/v1/batch", json=partly, headers=basic(key)).json()["rejected"]
    forged = SendGridSigner().headers(b"[]")
    assert_error(
        client.post("/webhooks/sendgrid/sg", content=b"[]", headers=forged),
        401,
        "invalid_signature",
    )
    wait_for_processors(db)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("engagehub_events_total", kind="segment", outcome="stored") == 3
    assert delta("engagehub_events_total", kind="segment", outcome="duplicate") == 2
    assert (
        delta("engagehub_events_rejected_total", vendor="sendgrid", reason="invalid_signature") == 1
    )
    assert delta("engagehub_events_rejected_total", vendor="segment", reason="invalid_payload") == 1
    assert value(after, "engagehub_unmapped_events", source="web", kind="segment") == 1
    assert value(after, "engagehub_unmapped_names", source="web", kind="segment") == 1
    assert value(after, "engagehub_log_head") >= 3
    assert value(after, "engagehub_lag_events", kind="processor", name="consent") == 0


@pytest.fixture
def paused(settings: Settings) -> Iterator[TestClient]:
    """An app whose processors do not run: every event waits."""
    app = create_app(settings.model_copy(update={"run_processors": False}))
    with TestClient(app) as test_client:
        yield test_client


def test_lag_per_processor_and_reported_destinations(paused: TestClient, db: Database) -> None:
    _, key = make_source(db, "web", "segment")
    batch = {"batch": [track(f"m{i}") for i in range(5)]}
    assert paused.post("/v1/batch", json=batch, headers=basic(key)).status_code == 200
    metrics.report_lag("destination", lambda conn: {"s3-archive": metrics.Lag(7, 2.5)})
    try:
        samples = scrape(paused)
    finally:
        del metrics._REPORTERS["destination"]
    head = value(samples, "engagehub_log_head")
    assert head >= 5
    assert value(samples, "engagehub_lag_events", kind="processor", name="log_index") == head
    assert value(samples, "engagehub_lag_seconds", kind="processor", name="log_index") >= 0
    assert value(samples, "engagehub_lag_events", kind="destination", name="s3-archive") == 7
    assert value(samples, "engagehub_lag_seconds", kind="destination", name="s3-archive") == 2.5


def test_metrics_token(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, admin_token=ADMIN_TOKEN, metrics_token="scrape-me"
    )  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        assert_error(client.get("/metrics"), 401, "unauthorized")
        assert_error(
            client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
        )
        assert scrape(client, Authorization="Bearer scrape-me")


def test_unknown_webhook_paths_mint_no_vendor_labels(client: TestClient) -> None:
    """Anyone can post to /webhooks/<anything>: the refusal counter keeps to known vendors."""
    for i in range(20):
        assert client.post(f"/webhooks/nosuch{i}/src", content=b"{}").status_code == 404
    assert client.post("/webhooks/sendgrid/nosuchsource", content=b"[]").status_code == 404
    vendors = {
        labels for (name, labels) in scrape(client) if name == "engagehub_events_rejected_total"
    }
    seen = {dict(labels)["vendor"] for labels in vendors}
    assert not {v for v in seen if v.startswith("nosuch")}, seen
    assert "sendgrid" in seen
