"""Every operation documents the errors the shared machinery can answer with, in one shape.

Validation (400), the admin token (401), the body limit (413), the path limit (414), the rate
limit (429) and storage being unavailable (503) can happen on any route; they are added to the
schema here so clients and the API fuzzer see every status a route may return, each with the
error schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from engagehub.api.auth import require_admin
from engagehub.http import ERROR_SCHEMA
from engagehub.security.route_table import depends_on, flat_routes

_UNSAFE = {"post", "put", "patch", "delete"}


def admin_paths(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every route guarded by the admin token dependency."""
    return {
        (route.path, method.lower())
        for route in flat_routes(app)
        if depends_on(route.dependant, require_admin)
        for method in route.methods
    }


def document_errors(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so the generated schema lists the shared error answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        guarded = admin_paths(app)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                statuses = ["429", "503"]
                if operation.get("parameters") or operation.get("requestBody"):
                    statuses.append("400")
                if "{" in path:
                    statuses.append("414")
                if method in _UNSAFE or operation.get("requestBody"):
                    statuses.append("413")
                if (path, method) in guarded:
                    statuses += ["401", "403"]
                for status in statuses:
                    responses.setdefault(status, ERROR_SCHEMA)
                _error_schema_everywhere(responses)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_schema_everywhere(responses: dict[str, Any]) -> None:
    """FastAPI's own 422 entry describes a shape we never send; ours replaces it."""
    if "422" in responses:
        responses.pop("422")
        responses.setdefault("400", ERROR_SCHEMA)
