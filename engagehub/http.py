"""HTTP plumbing shared by every route: orjson responses and the one error shape."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from engagehub.errors import EngagehubError, RateLimited, error_body
from engagehub.safejson import renderable

logger = logging.getLogger(__name__)
INT64_MAX = 2**63 - 1
"""Largest integer a path or query parameter may carry (what every store can bind)."""

_STATUS_CODES = {
    400: "invalid_payload",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid_payload",
    429: "rate_limited",
}


class JSONResponse(StarletteJSONResponse):
    """JSON rendered by orjson; a JSONResponse subclass so OpenAPI documents bodies as JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS, default=_fallback)
        except orjson.JSONEncodeError:  # too deep (stored before the limit) or a huge integer
            return orjson.dumps(
                renderable(content), option=orjson.OPT_NON_STR_KEYS, default=_fallback
            )


def _fallback(value: Any) -> Any:
    """Values orjson cannot encode (bytes in validation errors, exceptions): readable text."""
    if isinstance(value, bytes):
        return value[:200].decode("utf-8", "replace")
    return str(value)[:200]


def error_response(exc: EngagehubError) -> JSONResponse:
    """Render one error in the shared shape with its status (and Retry-After when rate limited)."""
    headers = {}
    if isinstance(exc, RateLimited) and "retry_after" in exc.details:
        headers["Retry-After"] = str(exc.details["retry_after"])
    if exc.http_status == 503:
        headers["Retry-After"] = str(exc.details.get("retry_after", 5))
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="engagehub", Bearer'
    return JSONResponse(exc.body(), status_code=exc.http_status, headers=headers)


def crash_response() -> JSONResponse:
    """The answer to an unexpected exception: the one shape, nothing of the exception leaked."""
    return JSONResponse(
        error_body("internal", "internal error; see the server log", {}), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error path (ours, FastAPI validation, 404/405, crashes) answers with the one shape."""

    async def on_engagehub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EngagehubError)
        if exc.http_status >= 500:
            logger.error("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg"),
                "value": _jsonable(err.get("input")),
            }
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        message = (
            f"invalid {first['field']}: {first['message']}" if first["field"] else "invalid request"
        )
        return JSONResponse(
            error_body("invalid_payload", message, {"errors": problems}), status_code=400
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        details: dict[str, Any] = {"path": request.url.path}
        if exc.status_code == 405:
            details["method"] = request.method
        return JSONResponse(
            error_body(code, str(exc.detail), details),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return crash_response()

    app.add_exception_handler(EngagehubError, on_engagehub_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_crash)


def _jsonable(value: Any) -> Any:
    try:
        orjson.dumps(value)
    except TypeError:
        return repr(value)[:200]
    return value


ERROR_SCHEMA: dict[str, Any] = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "details"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "details": {"type": "object"},
                        },
                    }
                },
            }
        }
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error shape for these statuses."""
    return dict.fromkeys(statuses, ERROR_SCHEMA)
