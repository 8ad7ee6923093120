"""Dashboard login at ``/login`` and ``/logout``, and the static files every page loads.

The login form checks an admin or scoped API token and sets the signed session cookie; every
form carries a CSRF token (double-submit cookie before login, the session's token after).
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.access import audit, tokens
from engagehub.access.tokens import Principal, token_hash
from engagehub.api.deps import HubDep
from engagehub.errors import PayloadError
from engagehub.security.identity import failed_authentication
from engagehub.web import session
from engagehub.web.common import (
    STATIC,
    STATIC_TYPES,
    current,
    dashboard_secret,
    form_of,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """Vendored Chart.js, the dashboard script and stylesheet."""
    body = STATIC.get(name)
    if body is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    media = STATIC_TYPES[name[name.rfind(".") :]]
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/login")
async def login_page(request: Request, error: str | None = None) -> Response:
    """The login form (double-submit CSRF cookie)."""
    token = secrets.token_urlsafe(24)
    response = render("login.html", login_csrf=token, csrf=None, error=error)
    session.set_cookie(response, request, session.LOGIN_CSRF, token, 3600)
    return response


@router.post("/login")
async def login(hub: HubDep, request: Request) -> Response:
    """Check the admin token; on success set the signed session cookie."""
    try:
        form = await form_of(request, None)
    except PayloadError:
        return await login_page(request, "Your login form expired; please try again.")
    given = token_hash(form.get("token", ""))
    who = await hub.read(lambda c: tokens.resolve(c, given, hub.admin_token_hash))
    if who is None:
        failed_authentication(request)  # a page for the browser, a failure for the limiter
        return await login_page(request, "That token is not valid.")
    request.state.principal = Principal(who.name, who.scope, who.token_hash, "dashboard")
    audit.annotate(request, action="dashboard login", target=who.name, params={"scope": who.scope})
    value, _ = session.issue(await dashboard_secret(request), who.token_hash, who.name)
    response = redirect("/")
    session.set_cookie(response, request, session.SESSION, value, session.MAX_AGE_S)
    response.delete_cookie(session.LOGIN_CSRF, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked)."""
    sess = await current(request)
    if sess is not None:
        try:
            await form_of(request, sess)
        except PayloadError:
            return redirect("/")
    response = redirect("/login")
    response.delete_cookie(session.SESSION, path="/")
    return response
