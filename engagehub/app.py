"""The ASGI application: routers from the registry, one error shape, a Hub per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from engagehub import __version__, registry
from engagehub.http import JSONResponse, install_error_handlers
from engagehub.hub import Hub
from engagehub.ingest.cors import CorsMiddleware
from engagehub.security import harden
from engagehub.settings import Settings, get_settings
from engagehub.storage import Database, open_database


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the app; the database opens and migrates when the app starts (lifespan)."""
    settings = settings or get_settings()
    database = db or open_database(settings.database_url, settings)
    hub = Hub(
        settings,
        database,
        registry.processors(settings),
        registry.services(settings),
        processor_factory=registry.processors,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="engagehub",
        version=__version__,
        summary="Message engagement events and consent, self-hosted.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.hub = hub
    install_error_handlers(app)
    for router in registry.routers():
        app.include_router(router)
    from engagehub.access.audit import AuditMiddleware
    from engagehub.ingest.direct import DirectIngest

    # Innermost, the audit log of management calls: vendor POSTs carry no principal (a write
    # key or signature is not one), so they are answered outside it, by DirectIngest, without
    # FastAPI's route layer. Both are inside the security middleware: limits come first.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(DirectIngest)
    from engagehub.ops.api import install as install_ops

    install_ops(app)
    harden(app, settings)
    app.add_middleware(CorsMiddleware)  # outermost: preflights and every /v1/ reply, errors too
    return app
