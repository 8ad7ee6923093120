"""``GET /api/system``: what an operator checks first: version, database, lag, unmapped, settings.

The dashboard's System page renders this same document, so its numbers are the API's. Secrets
(every ``SecretStr`` setting and the password of the database URL) are never shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from engagehub import __version__
from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.http import JSONResponse, error_responses
from engagehub.hub import Hub
from engagehub.ops import metrics
from engagehub.settings import Settings
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts

router = admin_router("system")
MASK = "********"


def masked_url(url: str) -> str:
    """A database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def settings_in_force(settings: Settings) -> list[dict[str, Any]]:
    """Every setting with its value (secrets masked) and its environment variable."""
    out = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown: Any = MASK if value.get_secret_value() else None
        elif name == "database_url":
            shown = masked_url(str(value))
        else:
            shown = value
        out.append(
            {
                "name": name,
                "env": f"ENGAGEHUB_{name.upper()}",
                "value": shown,
                "default": shown == field.default
                or (isinstance(value, SecretStr) and field.default is None and shown is None),
            }
        )
    return out


def system_status(conn: Connection, hub: Hub) -> dict[str, Any]:
    """The System page's document."""
    snap = metrics.snapshot(conn, [p.name for p in hub.runner.processors])
    unmapped = conn.all(
        "SELECT s.name AS source, u.vendor_event, u.count, u.last_seen FROM unmapped_events u "
        "JOIN sources s ON s.id = u.source_id ORDER BY u.count DESC, u.vendor_event LIMIT 200"
    )
    return {
        "version": __version__,
        "database": {"backend": hub.db.dialect, "url": masked_url(hub.settings.database_url)},
        "log_head": snap.head,
        "lag": [
            {"kind": kind, "name": name, "events": lag.events, "seconds": round(lag.seconds, 3)}
            for (kind, name), lag in sorted(snap.lag.items())
        ],
        "failing": dict(hub.runner.errors),
        "unmapped": [
            {
                "source": r["source"],
                "vendor_event": r["vendor_event"],
                "count": int(r["count"]),
                "last_seen": format_ts(r["last_seen"]),
            }
            for r in unmapped
        ],
        "settings": settings_in_force(hub.settings),
    }


@router.get(
    "/system",
    summary="Version, database, lag, unmapped names, settings (masked)",
    responses=error_responses(401),
)
async def system(hub: HubDep) -> JSONResponse:
    """What the dashboard's System page shows."""
    return JSONResponse(await hub.read(lambda c: system_status(c, hub)))
