"""Rendering a template as a recipient would see it, and a send as JSON: what the API, the
dashboard and the CLI show (no HTTP here, so the CLI needs no server or Hub)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from engagehub.errors import NotFound
from engagehub.messaging import links, templates
from engagehub.profiles import store as profiles
from engagehub.settings import Settings
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts


class PreviewIn(BaseModel):
    """Preview data: a profile (any identifier) and/or explicit traits, event properties."""

    profile: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    event: dict[str, Any] = Field(default_factory=dict)
    strict: bool = True


def preview(conn: Connection, settings: Settings, name: str, p: PreviewIn) -> dict[str, Any]:
    """Render a stored template as a recipient would see it (SMS adds encoding and segments)."""
    return render_preview(conn, settings, templates.load(conn, name), p)


def render_preview(
    conn: Connection, settings: Settings, tpl: templates.TemplateIn, p: PreviewIn
) -> dict[str, Any]:
    """Render any template, saved or not (the dashboard's editor previews unsaved drafts)."""
    traits: dict[str, Any] = {}
    address = "preview@example.com" if tpl.channel == "email" else "+15555550100"
    if p.profile:
        view = profiles.view(conn, profiles.find(conn, p.profile, settings.default_region))
        traits = dict(view.get("traits") or {})
    traits.update(p.traits)
    key = links.secret_key(conn, settings)
    base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    unsub, prefs = links.urls(
        base, links.sign(key, links.Recipient(tpl.channel, address, tpl.subscription_group))
    )
    context = {
        "profile": traits,
        "traits": traits,
        "event": p.event,
        "data": {},
        "contact": {"channel": tpl.channel, "address": address},
        "unsubscribe_url": unsub,
        "preferences_url": prefs,
        "message_id": "preview",
    }
    return templates.render(tpl, context, strict=p.strict).as_dict()


def send_json(conn: Connection, mid: str) -> dict[str, Any]:
    """One send row, JSON-ready."""
    row = conn.one("SELECT * FROM message_sends WHERE id = ?", (mid,))
    if row is None:
        raise NotFound(f"no message {mid!r}", message_id=mid)
    keys = ("template", "channel", "contact", "broadcast_id", "journey", "state", "attempts")
    out = {"message_id": row["id"], **{k: row[k] for k in keys}}
    out.update(
        transactional=bool(row["transactional"]),
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
        error=row["error"],
        defer_reason=row["defer_reason"],
        next_attempt_at=format_ts(row["next_attempt_at"]) if row["state"] == "pending" else None,
        created_at=format_ts(row["created_at"]),
        updated_at=format_ts(row["updated_at"]),
    )
    return out
