"""``GET /api/subscriptions/counts``: contact points per channel, group and state.

The dashboard's Consent page shows this table; both read :func:`counts`.
"""

from __future__ import annotations

from typing import Any

from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.consent.model import STATUSES
from engagehub.http import JSONResponse, error_responses
from engagehub.storage.base import Connection

router = admin_router("consent")


def counts(conn: Connection) -> list[dict[str, Any]]:
    """One row per (channel, group) with the number of contact points in each state."""
    rows = conn.all(
        "SELECT channel, group_name, status, COUNT(*) AS n FROM subscription_states "
        "GROUP BY channel, group_name, status ORDER BY channel, group_name, status"
    )
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["channel"], r["group_name"] or "")
        entry = table.setdefault(
            key,
            {"channel": key[0], "group": key[1] or None, **dict.fromkeys(STATUSES, 0), "total": 0},
        )
        entry[r["status"]] = entry.get(r["status"], 0) + int(r["n"])
        entry["total"] += int(r["n"])
    return list(table.values())


@router.get(
    "/subscriptions/counts",
    summary="Contact points per channel, group and subscription state",
    responses=error_responses(401),
)
async def subscription_counts(hub: HubDep) -> JSONResponse:
    """Counts of the current states (no entry means no_status, which is not counted)."""
    return JSONResponse({"counts": await hub.read(counts), "states": list(STATUSES)})
