"""What every dashboard page shares: templates, security headers, the session, CSRF-checked forms.

Each page module (``engagehub.web.<page>``) has its own router and uses only these helpers, so
adding a page touches no other page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from engagehub.access import tokens
from engagehub.access.scopes import READ_METHODS
from engagehub.access.tokens import Principal
from engagehub.api.deps import hub_of
from engagehub.errors import EngagehubError, PayloadError
from engagehub.hub import Hub
from engagehub.web import session

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}
STATIC = {
    f.name: f.read_bytes()
    for f in resources.files("engagehub.web").joinpath("static").iterdir()
    if f.is_file() and f.name[f.name.rfind(".") :] in STATIC_TYPES
}
env = Environment(
    loader=PackageLoader("engagehub.web", "templates"), autoescape=select_autoescape(["html"])
)
env.filters["pct"] = lambda v: f"{float(v) * 100:.1f}%"


def render(name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
    """A page with the security headers."""
    html = env.get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=http_status, headers=HEADERS)


def redirect(url: str) -> RedirectResponse:
    """303 See Other (POST -> GET), with the security headers."""
    return RedirectResponse(url, status_code=303, headers=HEADERS)


async def dashboard_secret(request: Request) -> str:
    state = request.app.state
    secret: str | None = getattr(state, "dashboard_secret", None)
    if secret is None:
        hub = hub_of(request)
        secret = await hub.write(session.server_secret)
        state.dashboard_secret = secret
    return secret


async def current(request: Request) -> dict[str, Any] | None:
    """The signed-in session, if any: signed under a token that is still valid (not revoked).

    ``sess["scope"]`` is that token's scope; the principal is kept for the audit log.
    """
    hub = hub_of(request)
    value = request.cookies.get(session.SESSION)
    name = session.claimed_token(value)
    if name is None:
        return None
    who = await hub.read(lambda c: tokens.by_name(c, name, hub.admin_token_hash))
    if who is None:
        return None
    sess = session.read(value, await dashboard_secret(request), who.token_hash)
    if sess is not None:
        sess["scope"], sess["token"] = who.scope, who.name
        request.state.principal = Principal(who.name, who.scope, who.token_hash, "dashboard")
    return sess


Page = Callable[[Request, Hub, dict[str, Any]], Awaitable[Response]]


def navigation(path: str) -> bool:
    """Dashboard forms that only move between pages or render a draft (any scope may post)."""
    return path in ("/lookup", "/logout") or path.endswith(("/filter", "/preview"))


async def guarded(request: Request, page: Page, back: str | None = None) -> Response:
    """Run a page for a signed-in user; errors become an HTML page with their status.

    A form that changes state needs a session of a ``write`` (or ``admin``) token. An action
    with a ``back`` page shows what went wrong there instead (``?error=``, see ``alert``), so
    the result of a form is always on the page it came from; scope and CSRF refusals do not.
    """
    sess = await current(request)
    if sess is None:
        return redirect("/login")
    try:
        if request.method not in READ_METHODS and not navigation(request.url.path):
            request.state.principal.require("write", f"{request.method} {request.url.path}")
    except EngagehubError as exc:
        return _error_page(sess, exc, "/")
    try:
        return await page(request, hub_of(request), sess)
    except EngagehubError as exc:
        if back is not None and exc.http_status < 500 and exc.details.get("field") != "csrf":
            return redirect(with_error(back, exc.message))
        return _error_page(sess, exc, back or "/")


def _error_page(sess: dict[str, Any], exc: EngagehubError, back: str) -> Response:
    return render(
        "error.html",
        exc.http_status,
        csrf=sess["csrf"],
        status=exc.http_status,
        title="Not found" if exc.http_status == 404 else "Cannot show this",
        message=exc.message,
        back=back,
    )


def with_error(url: str, message: str) -> str:
    """``url`` with ``?error=message`` (before its ``#fragment``)."""
    path, hash_, fragment = url.partition("#")
    joined = f"{path}{'&' if '?' in path else '?'}{urlencode({'error': message[:500]})}"
    return joined + hash_ + fragment


def alert(request: Request) -> str | None:
    """The error an action sent back to this page (shown with role=alert by base.html)."""
    return (request.query_params.get("error") or "")[:500] or None


async def form_of(request: Request, sess: dict[str, Any] | None) -> dict[str, str]:
    """The posted form, after its CSRF token was checked."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    expected = sess["csrf"] if sess else request.cookies.get(session.LOGIN_CSRF)
    if not session.same_token(form.get("csrf"), expected):
        raise PayloadError("invalid or missing CSRF token", field="csrf")
    return form
