"""Dashboard page ``/consent``: counts per channel, group and state; a person's subscriptions
with their audit history; subscriptions CSV upload with progress, result and error report.

Uploads go through the same code as ``POST /api/imports`` and the import page reads the same
row as ``GET /api/imports/{id}``; the error report is the API's CSV, ready to fix and upload.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi import UploadFile as FastAPIUpload
from starlette.datastructures import UploadFile
from starlette.responses import Response

from engagehub.consent import csv_import_api, store
from engagehub.consent.api import candidates
from engagehub.consent.csv_import import TEMPLATE
from engagehub.consent.model import STATUSES
from engagehub.consent.summary import counts
from engagehub.errors import NotFound, PayloadError
from engagehub.hub import Hub
from engagehub.storage.base import Connection
from engagehub.web import session
from engagehub.web.common import HEADERS, guarded, redirect, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)
IMPORTS_LISTED = 1000  # the newest; older imports stay readable at /consent/imports/{id}
PAGE_SIZE = 20


def _imports(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.all("SELECT * FROM imports ORDER BY created_at DESC, id LIMIT ?", (IMPORTS_LISTED,))
    return [csv_import_api.import_json(r) for r in rows]


def _person(conn: Connection, key: str, region: str) -> dict[str, Any]:
    """Subscriptions and history of every contact point the key can mean (as the API does)."""
    keys = candidates(key, None, region)
    history = store.history(conn, keys, 200)
    return {
        "key": key,
        "contacts": keys,
        "states": store.states_for(conn, keys),
        "history": history,
    }


def _history_text(h: dict[str, Any]) -> list[Any]:
    return [h.get(k) for k in ("contact", "channel", "group", "status", "source", "reason")]


def _import_text(i: dict[str, Any]) -> list[Any]:
    return [i["id"], i["filename"], i["status"]]


@router.get("/consent")
async def consent_page(request: Request) -> Response:
    """Counts, the person lookup, the upload form and the latest imports."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        key = (request.query_params.get("q") or "").strip()[:320]
        region = hub.settings.default_region

        def run(conn: Connection) -> dict[str, Any]:
            person = _person(conn, key, region) if key else None
            if person:
                person["history"] = listing(
                    request, "history", person["history"], _history_text, PAGE_SIZE
                )
            return {
                "counts": listing(request, "counts", counts(conn), fields("channel", "group")),
                "imports": listing(request, "imports", _imports(conn), _import_text, PAGE_SIZE),
                "person": person,
            }

        data = await hub.read(run)
        return render("consent.html", csrf=sess["csrf"], states=STATUSES, q=key, **data)

    return await guarded(request, page)


@router.get("/consent/template.csv")
async def template_csv(request: Request) -> Response:
    """The header of a subscriptions CSV (``engagehub template subscriptions``)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        return Response(
            (",".join(TEMPLATE) + "\r\n").encode(),
            media_type="text/csv",
            headers={**HEADERS, "Content-Disposition": 'attachment; filename="subscriptions.csv"'},
        )

    return await guarded(request, page)


@router.post("/consent/imports")
async def upload(request: Request) -> Response:
    """Start an import of the uploaded CSV, then show its page."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await request.form()
        if not session.same_token(str(form.get("csrf") or ""), sess["csrf"]):
            raise PayloadError("invalid or missing CSRF token", field="csrf")
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            raise PayloadError("choose a CSV file to upload", field="file")
        started = await csv_import_api.create_import(
            hub,
            file=cast(FastAPIUpload, file),  # the same object FastAPI would have passed
            dry_run=form.get("dry_run") == "on",
            default_region=None,
            allow_resubscribe=form.get("allow_resubscribe") == "on",
        )
        import_id = orjson.loads(bytes(started.body))["id"]
        return redirect(f"/consent/imports/{quote(import_id, safe='')}")

    return await guarded(request, page)


@router.get("/consent/imports/{import_id}")
async def import_page(request: Request, import_id: str) -> Response:
    """An import's status and counts; the page refreshes itself until the import is over."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        row = await hub.read(lambda c: c.one("SELECT * FROM imports WHERE id = ?", (import_id,)))
        if row is None:
            raise NotFound(f"no import {import_id!r}", import_id=import_id)
        return render("consent_import.html", csrf=sess["csrf"], imp=csv_import_api.import_json(row))

    return await guarded(request, page)


@router.get("/consent/imports/{import_id}/errors.csv")
async def import_errors(request: Request, import_id: str) -> Response:
    """The API's error report (row, column, value, reason, original row)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        report = await csv_import_api.import_errors(hub, import_id)
        report.headers["Content-Disposition"] = f'attachment; filename="{import_id}.errors.csv"'
        return report

    return await guarded(request, page)
