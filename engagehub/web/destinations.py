"""Dashboard page ``/destinations``: delivery status of every destination and export target,
dead letters with the receiver's answer, replay one or all, pause and resume.

Reads and actions are the functions behind ``/api/destinations`` (same numbers, same effects).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.destinations import store
from engagehub.destinations.api import export_statuses, statuses
from engagehub.errors import PayloadError
from engagehub.hub import Hub
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts
from engagehub.web.common import alert, form_of, guarded, redirect, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)
LETTERS_PAGE = 20


def _letters(conn: Connection, name: str) -> list[dict[str, Any]]:
    rows = store.dead_letters(conn, name)
    return [
        {**r, "created_at": format_ts(r["created_at"]), "updated_at": format_ts(r["updated_at"])}
        for r in reversed(rows)
    ]


def _letter_text(r: dict[str, Any]) -> list[Any]:
    return [r["id"], r["status"], r["error"]]


@router.get("/destinations")
async def destinations_page(request: Request) -> Response:
    """Every destination (lag, last success, last error, retry schedule) and export target."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        def run(conn: Connection) -> dict[str, Any]:
            found = listing(request, "destinations", statuses(conn), fields("name", "kind", "url"))
            for i, d in enumerate(found.rows):
                letters = _letters(conn, d["name"])
                d["dead"] = any(x["status"] == "dead" for x in letters)
                d["letters"] = listing(
                    request, f"letters{i + 1}", letters, _letter_text, LETTERS_PAGE
                )
            exports = listing(request, "exports", export_statuses(conn), fields("name"))
            return {"destinations": found, "exports": exports}

        s = hub.settings
        return render(
            "destinations.html",
            csrf=sess["csrf"],
            notice=request.query_params.get("notice"),
            alert=alert(request),
            backoff={
                "first": s.destination_backoff_seconds,
                "max": s.destination_backoff_max_seconds,
                "attempts": s.destination_max_attempts,
            },
            **await hub.read(run),
        )

    return await guarded(request, page)


@router.post("/destinations/{name}/{action}")
async def destination_action(request: Request, name: str, action: str) -> Response:
    """``replay-all``, ``replay`` (one dead letter), ``pause`` or ``resume``; back to the page."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        if action == "replay-all":
            result = await hub.write(lambda c: store.replay(c, name, None, True))
            notice = f"{result['dead_letters']} dead letters of {name} queued again"
        elif action == "replay":
            letter = form.get("dead_letter", "")
            if not letter.isdigit():
                raise PayloadError("which dead letter?", field="dead_letter", value=letter)
            await hub.write(lambda c: store.replay_letter(c, name, int(letter)))
            notice = f"dead letter {letter} of {name} queued again"
        elif action in ("pause", "resume"):
            await hub.write(lambda c: store.set_paused(c, name, action == "pause"))
            notice = f"{name} {'paused' if action == 'pause' else 'resumed'}"
        else:
            raise PayloadError(f"unknown action {action!r}", field="action", value=action)
        hub.services.wake("destinations")
        return redirect(f"/destinations?notice={quote(notice)}#dest-{quote(name)}")

    return await guarded(request, page, f"/destinations#dest-{quote(name)}")
