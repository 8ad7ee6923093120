"""The one error shape, checked on any response (used by the fuzz and security tests)."""

from __future__ import annotations

from typing import Any


def error_shape_problem(response: Any) -> str | None:
    """None when a response is a success or an error in the one shape; else what is wrong."""
    if response.status_code < 400:
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"error {response.status_code} is not JSON: {response.text[:200]!r}"
    try:
        body = response.json()
    except ValueError:
        return f"error {response.status_code} body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"error {response.status_code} is not {{'error': ...}}: {body!r:.300}"
    error = body["error"]
    if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        return f"error {response.status_code} lacks code/message/details: {body!r:.300}"
    if not (isinstance(error["code"], str) and error["code"]):
        return f"error code is not a string: {body!r:.300}"
    if not (isinstance(error["message"], str) and error["message"]):
        return f"error message is empty: {body!r:.300}"
    if not isinstance(error["details"], dict):
        return f"error details is not an object: {body!r:.300}"
    return None
