"""Subscriptions and imports APIs through the ASGI app, with their effect applied on return."""

from __future__ import annotations

import time

import httpx
import orjson
from fastapi.testclient import TestClient

from engagehub.model import IncomingEvent
from engagehub.storage.base import Connection
from tests.conftest import app_hub, assert_error
from tests.waiting import eventually

CSV = (
    "\ufeffuser_id,email,phone,email_subscription_status,sms_subscription_status,"
    "email_group:newsletter,plan\r\n"
    "u1,Ada@Example.com,+1 415 555 0100,subscribed,subscribed,subscribed,pro\r\n"
    'u2,bad-email,,subscribed,,,"=HYPERLINK(""http://evil"")"\r\n'
    "u3,carol@example.com,,unsubscribed,,,free\r\n"
)


def put(
    client: TestClient, admin: dict[str, str], items: list[dict[str, object]], **kw: object
) -> httpx.Response:
    return client.put("/api/subscriptions", json={"subscriptions": items, **kw}, headers=admin)


def test_replace_subscriptions_reports_each_item(client: TestClient, admin: dict[str, str]) -> None:
    r = put(
        client,
        admin,
        [
            {
                "key": "Ada@Example.com",
                "type": "EMAIL",
                "status": "SUBSCRIBED",
                "groups": [{"name": "newsletter", "status": "UNSUBSCRIBED"}],
            },
            {"key": "(415) 555-0100", "type": "SMS", "status": "SUBSCRIBED"},
            {"key": "nope", "type": "EMAIL", "status": "SUBSCRIBED"},
            {"key": "a@b.com", "type": "FAX", "status": "SUBSCRIBED"},
            {"key": "c@d.com", "type": "EMAIL", "status": "MAYBE"},
            {
                "key": "e@f.com",
                "type": "EMAIL",
                "status": "SUBSCRIBED",
                "groups": [{"name": "g", "status": "WHATEVER"}],
            },
        ],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["key"] for s in body["successes"]] == ["ada@example.com", "+14155550100"]
    failures = {f["index"]: f["error"] for f in body["failures"]}
    assert failures[2]["details"]["value"] == "nope"
    assert failures[3]["details"]["value"] == "FAX"
    assert failures[4]["details"]["value"] == "MAYBE"
    assert failures[5]["details"]["value"] == "WHATEVER"
    states = client.get(
        "/api/subscriptions", params={"key": "ada@example.com"}, headers=admin
    ).json()["subscriptions"]
    assert {(s["group"], s["status"]) for s in states} == {
        (None, "subscribed"),
        ("newsletter", "unsubscribed"),
    }
    # e@f.com had a bad group: nothing of that item was applied.
    assert (
        client.get("/api/subscriptions", params={"key": "e@f.com"}, headers=admin).json()[
            "subscriptions"
        ]
        == []
    )


def test_own_unsubscribe_blocks_bulk_resubscribe(client: TestClient, admin: dict[str, str]) -> None:
    put(client, admin, [{"key": "z@example.com", "type": "EMAIL", "status": "UNSUBSCRIBED"}])
    # An API unsubscribe is not the person's own action: resubscribing is allowed.
    ok = put(client, admin, [{"key": "z@example.com", "type": "EMAIL", "status": "SUBSCRIBED"}])
    assert ok.json()["failures"] == []
    hub = app_hub(client)
    from engagehub.consent import store
    from engagehub.consent.model import Change

    def own_unsubscribe(conn: Connection) -> tuple[int, IncomingEvent]:
        change = Change("z@example.com", "email", "unsubscribed", "", "link")
        return store.builtin_source_id(conn), store.change_event(
            change, int(time.time() * 1000), "link-1"
        )

    portal = client.portal
    assert portal is not None  # the client is started (the fixture's ``with``)
    builtin, event = portal.call(hub.read, own_unsubscribe)
    result = portal.call(hub.append, builtin, [event])
    portal.call(hub.caught_up, result.head)
    refused = put(
        client, admin, [{"key": "z@example.com", "type": "EMAIL", "status": "SUBSCRIBED"}]
    )
    assert refused.json()["failures"][0]["error"]["code"] == "resubscribe_refused"
    forced = put(
        client,
        admin,
        [{"key": "z@example.com", "type": "EMAIL", "status": "SUBSCRIBED"}],
        allow_resubscribe=True,
    )
    assert forced.json()["failures"] == []
    history = client.get(
        "/api/subscriptions/history", params={"contact": "Z@example.com"}, headers=admin
    ).json()["history"]
    assert [(h["status"], h["reason"]) for h in history[:2]] == [
        ("subscribed", "api"),
        ("unsubscribed", "link"),
    ]


def test_bad_requests(client: TestClient, admin: dict[str, str]) -> None:
    assert_error(
        client.put("/api/subscriptions", content=b"{", headers=admin), 400, "invalid_payload"
    )
    assert_error(
        client.put("/api/subscriptions", json={"subscriptions": []}, headers=admin),
        400,
        "invalid_payload",
    )
    big = {"subscriptions": [{"key": "x" * 300 + "@e.com", "type": "EMAIL", "status": "x"}] * 4000}
    assert_error(
        client.put("/api/subscriptions", content=orjson.dumps(big), headers=admin),
        413,
        "payload_too_large",
    )
    assert_error(client.put("/api/subscriptions", json={"subscriptions": []}), 401, "unauthorized")
    assert_error(
        client.get("/api/subscriptions", params={"key": "a", "type": "FAX"}, headers=admin),
        400,
        "invalid_payload",
    )


def test_csv_upload_over_http(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post(
        "/api/imports", files={"file": ("subs.csv", CSV.encode(), "text/csv")}, headers=admin
    )
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    status = eventually(
        lambda: (s := client.get(url, headers=admin).json())["status"] in ("done", "failed") and s,
        10,
        0.02,
        what="the import to finish",
    )
    assert status["status"] == "done", status
    assert (status["rows_read"], status["rows_applied"], status["rows_rejected"]) == (3, 2, 1)
    report = client.get(status["errors_url"], headers=admin)
    assert report.headers["content-type"].startswith("text/csv")
    lines = report.text.splitlines()
    assert lines[0].startswith("row_number,column,value,reason,user_id,email")
    assert lines[1].startswith("3,email,bad-email,")
    assert "'=HYPERLINK" in lines[1]  # formula neutralised
    sms = client.get(
        "/api/subscriptions", params={"key": "+14155550100", "type": "SMS"}, headers=admin
    ).json()["subscriptions"]
    assert sms[0]["status"] == "subscribed"
    profile = client.get("/api/profiles/u1", headers=admin).json()
    assert {"kind": "email", "value": "ada@example.com"} in profile["identities"]
    assert profile["traits"]["plan"] == "pro"
    assert_error(client.get("/api/imports/nope", headers=admin), 404, "not_found")
    assert_error(client.get("/api/profiles/nobody@nowhere.org", headers=admin), 404, "not_found")
