"""Editing a goal (``PUT /api/goals/{id}``) keeps its id and leaves the conversions a goal with
the new definition would have had from the start; errors name the value and change nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engagehub.storage import Database
from tests.analytics.test_api import ingest_story
from tests.conftest import assert_error


def _conversions(client: TestClient, admin: dict[str, str]) -> int:
    stats = client.get("/api/campaigns/spring/stats", headers=admin).json()
    return int(stats["totals"]["conversions"])


def test_an_edited_goal_counts_as_if_defined_so_from_the_start(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    ingest_story(client, db)
    narrow = {
        "campaign": "spring",
        "event": "Order Completed",
        "where": "properties.coupon == 'SPRING'",
        "within": "72h",
    }
    goal = client.post("/api/goals", json=narrow, headers=admin).json()
    assert _conversions(client, admin) == 1

    wide = {**narrow, "where": None}
    r = client.put(f"/api/goals/{goal['id']}", json=wide, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["where"]) == (goal["id"], None)
    assert r.json()["backfilled_events"] == 2
    assert _conversions(client, admin) == 2  # u1 and u2 both ordered
    [listed] = client.get("/api/goals", headers=admin).json()["goals"]
    assert (listed["id"], listed["where"], listed["within"]) == (goal["id"], None, "72h")

    # Back to the narrow goal: exactly the first answer again (nothing counted twice).
    client.put(f"/api/goals/{goal['id']}", json=narrow, headers=admin)
    assert _conversions(client, admin) == 1

    bad = {**narrow, "within": "3 fortnights"}
    details = assert_error(
        client.put(f"/api/goals/{goal['id']}", json=bad, headers=admin), 400, "invalid_payload"
    )
    assert details == {"field": "within", "value": "3 fortnights"}
    assert client.get("/api/goals", headers=admin).json()["goals"][0]["where"] == narrow["where"]
    assert_error(client.put("/api/goals/999", json=narrow, headers=admin), 404, "not_found")
    assert _conversions(client, admin) == 1
