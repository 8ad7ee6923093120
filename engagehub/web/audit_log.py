"""Dashboard page ``/audit``: the audit log of management calls, paged by id (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.access import audit
from engagehub.hub import Hub
from engagehub.storage import keyset
from engagehub.storage.base import Connection
from engagehub.web.common import guarded, render
from engagehub.web.listing import moved

router = APIRouter(include_in_schema=False)


AUDIT_PAGE = 50
_AUDIT_FILTERS = ("actor", "action", "via")


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    """The audit log of management calls (admin tokens only)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        request.state.principal.require("admin", "the audit page")
        q = {k: (request.query_params.get(k) or "").strip()[:200] for k in _AUDIT_FILTERS}
        given = request.query_params.get("before") or ""
        before = int(given) if given.isascii() and given.isdigit() and len(given) < 19 else None

        def run(conn: Connection) -> list[dict[str, Any]]:
            return audit.query(
                conn,
                q["actor"] or None,
                q["action"] or None,
                q["via"] or None,
                before_id=before,
                limit=AUDIT_PAGE + 1,
            )

        entries, last = keyset.page(await hub.read(run), AUDIT_PAGE)
        return render(
            "audit.html",
            csrf=sess["csrf"],
            entries=entries,
            q=q,
            next_href=moved(request, before=str(last["id"])) if last else None,
            first_href=moved(request, before=None) if before is not None else None,
        )

    return await guarded(request, page)
