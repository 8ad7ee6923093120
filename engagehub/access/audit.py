"""The audit log: who changed what, through the API, the dashboard or the CLI, and how it ended.

One ASGI middleware records every authenticated state-changing call (any method but GET, HEAD
and OPTIONS) after the route ran and before the last byte of its answer is sent, so a client
that saw the answer can read the entry. Routes add nothing; one that knows better (erasure:
never the person's identifier) calls :func:`annotate`. Only authenticated calls are recorded,
so an anonymous caller cannot grow the table. Secrets in parameters are masked.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engagehub.access.scopes import READ_METHODS
from engagehub.access.tokens import Principal
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms

MASK = "***"
_SECRET = re.compile(
    r"secret|token|password|passwd|api[_-]?key|write[_-]?key|auth|credential|private", re.I
)
_BODY_MAX = 16 * 1024
_PARAMS_MAX = 4000
COLUMNS = "id, at, actor, via, action, target, params, result, status"


def mask(value: Any, depth: int = 0) -> Any:
    """``value`` with every secret-looking field replaced by ``***`` (nested, bounded depth)."""
    if depth > 8:
        return MASK
    if isinstance(value, dict):
        return {
            str(k): MASK if _SECRET.search(str(k)) else mask(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v, depth + 1) for v in value[:100]]
    return value


def record(
    conn: Connection,
    actor: str,
    via: str,
    action: str,
    target: str | None,
    params: dict[str, Any],
    result: str,
    status: int | None = None,
) -> None:
    """Append one entry (parameters masked and bounded)."""
    text = orjson.dumps(mask(params), default=str).decode()
    if len(text) > _PARAMS_MAX:
        text = orjson.dumps({"truncated": text[:_PARAMS_MAX]}).decode()
    with conn.transaction():
        conn.execute(
            "INSERT INTO audit_log (at, actor, via, action, target, params, result, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (now_ms(), actor, via, action[:200], (target or None) and target[:500], text, result,
             status),
        )  # fmt: skip


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    """Public form of one entry."""
    return {**row, "at": format_ts(row["at"]), "params": orjson.loads(row["params"])}


def query(
    conn: Connection,
    actor: str | None = None,
    action: str | None = None,
    via: str | None = None,
    since: int | None = None,
    until: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries, newest first, filtered (``action`` matches as a substring)."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("actor", actor), ("via", via)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if action is not None:
        clauses.append("action LIKE ?")
        params.append(f"%{action}%")
    if since is not None:
        clauses.append("at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("at < ?")
        params.append(until)
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    where = " AND ".join(clauses) or "1 = 1"
    rows = conn.all(
        f"SELECT {COLUMNS} FROM audit_log WHERE {where} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )
    return [entry_json(r) for r in rows]


def annotate(
    request: Request,
    action: str | None = None,
    target: str | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Replace what the middleware would record for this call (e.g. never a person's key)."""
    note: dict[str, Any] = getattr(request.state, "audit", None) or {}
    for key, value in (("action", action), ("target", target), ("params", params)):
        if value is not None:
            note[key] = value
    request.state.audit = note


def skip(request: Request) -> None:
    """This POST changes nothing (a dashboard navigation form): do not record it."""
    request.state.audit = False


class AuditMiddleware:
    """Records authenticated state-changing calls (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        ctype = dict(scope.get("headers") or ()).get(b"content-type", b"")
        capture = ctype.startswith((b"application/json", b"application/x-www-form-urlencoded"))
        body = bytearray()
        answer: dict[str, Any] = {"status": 500, "body": bytearray()}

        async def receive_and_keep() -> Message:
            message = await receive()
            if capture and message["type"] == "http.request" and len(body) < _BODY_MAX:
                body.extend(message.get("body", b"")[: _BODY_MAX - len(body)])
            return message

        async def send_after_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                if answer["status"] >= 400 and len(answer["body"]) < 2048:
                    answer["body"].extend(message.get("body", b"")[:2048])
                if not message.get("more_body", False):
                    await self._record(scope, state, bytes(body), ctype, answer)
                    answer["done"] = True
            await send(message)

        try:
            await self.app(scope, receive_and_keep, send_after_recording)
        except Exception:
            if not answer.get("done"):
                answer["status"] = 500
                await self._record(scope, state, bytes(body), ctype, answer)
            raise

    async def _record(
        self,
        scope: Scope,
        state: dict[str, Any],
        body: bytes,
        ctype: bytes,
        answer: dict[str, Any],
    ) -> None:
        principal = state.get("principal")
        note = state.get("audit")
        if not isinstance(principal, Principal) or note is False:
            return
        note = note or {}
        status = int(answer["status"])
        route = scope.get("route")
        template = getattr(route, "path", None) or scope["path"]
        action = note.get("action") or f"{scope['method']} {template}"
        path_params = scope.get("path_params") or {}
        target = note.get("target") or "/".join(str(v) for v in path_params.values()) or None
        params = note.get("params")
        if params is None:
            params = _params(scope, body, ctype)
        result = "ok" if status < 400 else _error_code(bytes(answer["body"]), status)
        hub = scope["app"].state.hub

        def write(conn: Connection) -> None:
            record(conn, principal.name, principal.via, action, target, params, result, status)

        await hub.write(write)


def _params(scope: Scope, body: bytes, ctype: bytes) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    out: dict[str, Any] = {}
    query = scope.get("query_string", b"")
    if query:
        out["query"] = dict(parse_qsl(query.decode("latin-1")))
    if body and ctype.startswith(b"application/json"):
        try:
            out["body"] = orjson.loads(body)
        except orjson.JSONDecodeError:
            out["body"] = f"<{len(body)} bytes, not JSON>"
    elif body:
        out["body"] = {k: v for k, v in parse_qsl(body.decode("latin-1")) if k != "csrf"}
    return out


def _error_code(body: bytes, status: int) -> str:
    try:
        data = orjson.loads(body)
        return str(data["error"]["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"http_{status}"
