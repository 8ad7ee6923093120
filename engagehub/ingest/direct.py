"""The vendor routes answered as plain ASGI: no FastAPI routing or dependency layer per request.

Ingest is the one hot path of the server (a Segment client sends a batch every few
milliseconds); FastAPI's route matching over every route of the app, its dependency solving and
its exit stacks cost ~10% of the server's CPU per event there. ``DirectIngest`` is the innermost
middleware of the app: a ``POST`` to a vendor route (``vendors.webhooks()``) is handed straight
to ``ingest.webhooks.receive`` — the same function the documented FastAPI routes call — and
everything else goes on to FastAPI. Every middleware around the app (security limits and
headers, CORS, refusal metrics, audit) still sees each request, and errors are rendered by the
app's own exception handlers, so the answers are the ones the FastAPI routes give.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from engagehub.errors import EngagehubError
from engagehub.ingest.webhooks import receive as answer_request
from engagehub.vendors import webhooks
from engagehub.vendors.base import Webhook

Found = tuple[str, Webhook, str | None]
"""The source kind, the route and the source name in its path (None: found by key)."""


class DirectIngest:
    """Innermost middleware: vendor ``POST`` routes without FastAPI's per-request layers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.exact: dict[str, tuple[str, Webhook]] = {}
        self.named: list[tuple[str, str, str, Webhook]] = []
        """(prefix, suffix, kind, route) of the routes with ``{source}`` in their path."""
        for kind, hook in webhooks():
            if "{source}" in hook.route:
                prefix, suffix = hook.route.split("{source}", 1)
                self.named.append((prefix, suffix, kind, hook))
            else:
                self.exact[hook.route] = (kind, hook)

    def find(self, path: str) -> Found | None:
        """The route a path names, as FastAPI would match it (a source name has no ``/``)."""
        exact = self.exact.get(path)
        if exact is not None:
            return exact[0], exact[1], None
        for prefix, suffix, kind, hook in self.named:
            if path.startswith(prefix) and path.endswith(suffix):
                name = path[len(prefix) : len(path) - len(suffix)]
                if name and "/" not in name:
                    return kind, hook, name
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            found = self.find(path[len(root) :] if root and path.startswith(root) else path)
        if found is None:
            await self.app(scope, receive, send)
            return
        kind, hook, name = found
        request = Request(scope, receive)
        try:
            response = await answer_request(request.app.state.hub, request, kind, hook, name)
        except (EngagehubError, HTTPException) as exc:  # anything else: the server's 500
            response = await _handler(request, exc)(request, exc)
        await response(scope, receive, send)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _handler(request: Request, exc: Exception) -> Handler:
    """The app's exception handler for ``exc`` (Starlette's lookup: the nearest class)."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            handler: Handler = handlers[cls]
            return handler
    raise exc
