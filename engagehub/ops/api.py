"""``GET /metrics`` and the middleware that counts refused ingest requests by vendor and reason."""

from __future__ import annotations

import hmac

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engagehub.api.deps import HubDep
from engagehub.errors import AuthError
from engagehub.http import error_responses
from engagehub.ops import metrics
from engagehub.vendors import SOURCE_KINDS

router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401)},
)
async def prometheus_metrics(hub: HubDep, request: Request) -> Response:
    """Ingest counters, lag per processor and destination, unmapped names (text format 0.0.4)."""
    token = hub.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise AuthError("/metrics needs the bearer token set in ENGAGEHUB_METRICS_TOKEN")
    names = [p.name for p in hub.runner.processors]
    snap = await hub.read(lambda conn: metrics.snapshot(conn, names))
    body, content_type = metrics.render(snap, dict(hub.runner.errors), dict(hub.runner.cpu))
    return Response(body, media_type=content_type)


def vendor_of(path: str) -> str | None:
    """The vendor an ingest path belongs to: a known kind only, so callers cannot mint labels."""
    if path.startswith("/v1/"):
        return "segment"
    if path.startswith("/crossengage/"):
        return "crossengage"
    if path.startswith("/webhooks/"):
        name = path.split("/", 3)[2]
        name = "braze" if name == "braze-currents" else name
        return name if name in SOURCE_KINDS else None
    return None


def count_refusals(vendor: str, status: int, body: bytes) -> None:
    """Count the events a reply refused: each listed rejection, or the whole request."""
    if status < 400 and b'"rejected"' not in body:
        return
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        if status >= 400:
            metrics.record_rejected(vendor, f"http_{status}")
        return
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details", {}) if isinstance(error, dict) else {}
    listed = payload.get("rejected") if status < 400 else details.get("rejected")
    if isinstance(listed, list) and listed:
        for item in listed:
            problem = item.get("error", {}) if isinstance(item, dict) else {}
            code = problem.get("code") if isinstance(problem, dict) else None
            message = problem.get("message") if isinstance(problem, dict) else None
            metrics.record_rejected(vendor, str(code or "invalid_payload"), message=str(message))
    elif status >= 400:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        metrics.record_rejected(vendor, str(code or f"http_{status}"), message=str(message))


class RefusalCounter:
    """Pure ASGI middleware: reads the (small) reply of ingest routes that refused something."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vendor = vendor_of(scope.get("path", "")) if scope["type"] == "http" else None
        if vendor is None:
            await self.app(scope, receive, send)
            return
        status = 0
        chunks: list[bytes] = []

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    count_refusals(vendor, status, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, watch)


def install(app: FastAPI) -> None:
    """Add the refusal counter (``/metrics`` itself comes through the registry's routers)."""
    app.add_middleware(RefusalCounter)
