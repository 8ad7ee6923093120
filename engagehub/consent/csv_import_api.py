"""CSV uploads over HTTP: ``POST /api/imports`` (multipart), ``GET /api/imports/{id}`` and its
error report ``GET /api/imports/{id}/errors.csv``. The import runs in the background; events go
through the server's writer like any other, and the import is ``done`` once its consent changes
are applied."""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from fastapi import File, Form, UploadFile
from starlette.responses import Response

from engagehub import csvsafe
from engagehub.api.deps import HubDep
from engagehub.api.routing import admin_router
from engagehub.consent import batches, store
from engagehub.consent.csv_import import (
    REPORT_COLUMNS,
    CsvImport,
    RowError,
    file_digest,
    refused_indexes,
    run_import,
)
from engagehub.consent.model import Change
from engagehub.errors import EngagehubError, NotFound, PayloadTooLarge
from engagehub.http import JSONResponse, error_responses
from engagehub.hub import Hub
from engagehub.privacy import suppress
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms

router = admin_router("imports")
logger = logging.getLogger(__name__)
_tasks: set[asyncio.Task[None]] = set()


class _DbErrors:
    """Collects rejected rows and writes them to ``import_errors`` in batches."""

    def __init__(self, import_id: str, write: Any) -> None:
        self.import_id = import_id
        self.header: list[str] = []
        self.pending: list[tuple[Any, ...]] = []
        self.write = write

    def start(self, header: list[str]) -> None:
        self.header = header

    def add(self, error: RowError) -> None:
        original = dict(zip(self.header, error.original, strict=False))
        self.pending.append(
            (
                self.import_id,
                error.row_number,
                error.column or "",
                error.value,
                error.reason,
                orjson.dumps(original).decode(),
            )
        )
        if len(self.pending) >= 500:
            self.flush()

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        if rows:
            self.write(
                lambda conn: conn.executemany(
                    "INSERT INTO import_errors (import_id, row_number, column_name, value, reason, "
                    "original) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    rows,
                )
            )


async def _run(hub: Hub, import_id: str, path: Path, options: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()

    def write(fn: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(hub.write(fn), loop).result()

    def work() -> tuple[Any, int]:
        heads = [0]
        with hub.db.reader() as conn:
            builtin = store.builtin_source_id(conn)
            job = CsvImport(
                file_digest(path), now_ms(), options["region"], options["allow_resubscribe"]
            )
            errors = _DbErrors(import_id, write)

            def refused(changes: list[Change]) -> set[int]:
                return refused_indexes(changes, lambda keys: store.load_states(conn, keys))

            def sink(item: batches.Chunk) -> int:
                write(lambda c: batches.store(c, builtin, item, now_ms()))  # rows, then record
                result = asyncio.run_coroutine_threadsafe(
                    hub.append(builtin, [item.event], job.event_time), loop
                ).result()
                heads.append(result.head)
                return result.inserted

            try:
                with path.open("rb") as fh:
                    report = run_import(
                        fh,
                        job,
                        refused,
                        None if options["dry_run"] else sink,
                        errors,
                        erased=lambda values: suppress.matching(conn, values),
                    )
            finally:
                job.close()
            errors.flush()
        return report, max(heads)

    try:
        await hub.write(lambda c: _status(c, import_id, "running"))
        report, head = await asyncio.to_thread(work)
        if head:
            await hub.caught_up(head, ["consent"])
        await hub.write(lambda c: _status(c, import_id, "done", report))
    except Exception as exc:  # the import fails visibly; the server goes on
        logger.exception("import %s failed", import_id)
        message = exc.message if isinstance(exc, EngagehubError) else f"{type(exc).__name__}: {exc}"
        await hub.write(lambda c: _status(c, import_id, "failed", error=message))
    finally:
        path.unlink(missing_ok=True)


def _status(
    conn: Connection, import_id: str, status: str, report: Any = None, error: str | None = None
) -> None:
    finished = now_ms() if status in ("done", "failed") else None
    conn.execute(
        "UPDATE imports SET status = ?, rows_read = ?, rows_applied = ?, rows_rejected = ?, "
        "error = ?, finished_at = ? WHERE id = ?",
        (
            status,
            getattr(report, "rows_read", 0),
            getattr(report, "rows_applied", 0),
            getattr(report, "rows_rejected", 0),
            error,
            finished,
            import_id,
        ),
    )


@router.post(
    "/imports",
    status_code=202,
    summary="Upload a subscriptions CSV",
    responses=error_responses(400, 401, 413),
)
async def create_import(
    hub: HubDep,
    file: UploadFile = File(description="UTF-8 CSV; see `engagehub template subscriptions`"),
    dry_run: bool = Form(default=False),
    default_region: str | None = Form(default=None, min_length=2, max_length=2),
    allow_resubscribe: bool = Form(default=False),
) -> JSONResponse:
    """Start an import; poll ``GET /api/imports/{id}`` for its outcome."""
    limit = hub.settings.max_upload_bytes
    handle, name = tempfile.mkstemp(prefix="engagehub-import-", suffix=".csv")
    path = Path(name)
    size = 0
    with open(handle, "wb") as out:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise PayloadTooLarge(f"upload is over the {limit} byte limit", limit=limit)
            out.write(chunk)
    import_id = uuid.uuid4().hex
    options = {
        "dry_run": dry_run,
        "allow_resubscribe": allow_resubscribe,
        "region": (default_region or hub.settings.default_region).upper(),
    }
    await hub.write(
        lambda c: c.execute(
            "INSERT INTO imports (id, filename, status, options, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                import_id,
                file.filename or "upload.csv",
                "queued",
                orjson.dumps(options).decode(),
                now_ms(),
            ),
        )
    )
    task = asyncio.create_task(_run(hub, import_id, path, options))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return JSONResponse(
        {"id": import_id, "status": "queued", "url": f"/api/imports/{import_id}"}, status_code=202
    )


def import_json(row: dict[str, Any]) -> dict[str, Any]:
    """Public form of an import."""
    out = {
        "id": row["id"],
        "filename": row["filename"],
        "status": row["status"],
        "options": orjson.loads(row["options"]),
        "rows_read": row["rows_read"],
        "rows_applied": row["rows_applied"],
        "rows_rejected": row["rows_rejected"],
        "error": row["error"],
        "created_at": format_ts(row["created_at"]),
        "finished_at": format_ts(row["finished_at"]),
    }
    if row["rows_rejected"]:
        out["errors_url"] = f"/api/imports/{row['id']}/errors.csv"
    return out


@router.get(
    "/imports/{import_id}", summary="Status of an import", responses=error_responses(401, 404)
)
async def get_import(hub: HubDep, import_id: str) -> JSONResponse:
    """Counts, status (queued, running, done, failed) and the error report link."""
    row = await hub.read(lambda c: c.one("SELECT * FROM imports WHERE id = ?", (import_id,)))
    if row is None:
        raise NotFound(f"no import {import_id!r}", import_id=import_id)
    return JSONResponse(import_json(row))


@router.get(
    "/imports/{import_id}/errors.csv",
    summary="Error report of an import",
    responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 404)},
)
async def import_errors(hub: HubDep, import_id: str) -> Response:
    """Row number, column, value, reason and the original row; fix it and upload it again."""

    def run(conn: Connection) -> str | None:
        if conn.scalar("SELECT 1 FROM imports WHERE id = ?", (import_id,)) is None:
            return None
        rows = conn.all(
            "SELECT row_number, column_name, value, reason, original FROM "
            "import_errors WHERE import_id = ? ORDER BY row_number, column_name",
            (import_id,),
        )
        originals = [orjson.loads(r["original"]) for r in rows]
        columns = list(dict.fromkeys(k for o in originals for k in o if k not in REPORT_COLUMNS))
        buffer = io.StringIO()
        writer = csvsafe.writer(buffer)
        writer.writerow([*REPORT_COLUMNS, *columns])
        for r, original in zip(rows, originals, strict=True):
            writer.writerow(
                (
                    r["row_number"],
                    r["column_name"],
                    r["value"],
                    r["reason"],
                    *(original.get(c, "") for c in columns),
                )
            )
        return buffer.getvalue()

    text = await hub.read(run)
    if text is None:
        raise NotFound(f"no import {import_id!r}", import_id=import_id)
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{import_id}-errors.csv"'},
    )
