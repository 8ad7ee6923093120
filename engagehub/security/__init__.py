"""Protections every route gets without asking: headers, limits, CSRF, documented errors.

``harden(app, settings)`` is called once by ``create_app``; everything here works on the ASGI
level or on the finished OpenAPI schema, so routes added by any feature are covered as well.
"""

from __future__ import annotations

from fastapi import FastAPI

from engagehub.security.middleware import SecurityMiddleware
from engagehub.security.openapi import document_errors
from engagehub.settings import Settings

__all__ = ["harden"]


def harden(app: FastAPI, settings: Settings) -> None:
    """Install the security middleware and document its error answers on every operation."""
    app.add_middleware(SecurityMiddleware, settings=settings)
    document_errors(app)
