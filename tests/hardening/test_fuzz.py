"""Schemathesis over every operation of the OpenAPI schema, in process over ASGI, on both backends.

The schema is read from the running app, so routes added later are fuzzed without touching this
file. Requests carry real credentials (admin token, a Segment write key, a CrossEngage token) so
the fuzzer gets past authentication and reaches the handlers; a second pass sends no credential
and bodies just over each limit. Every answer must be documented, never 5xx, and every error
must have the one JSON error shape.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from requests.models import RequestEncodingMixin
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engagehub.security.route_table import flat_routes
from engagehub.storage import sources as source_store
from tests.conftest import ADMIN_TOKEN, app_hub
from tests.hardening.shape import error_shape_problem

# Examples per operation and generation mode; ENGAGEHUB_FUZZ_EXAMPLES=200 fuzzes deeper locally.
EXAMPLES = int(os.environ.get("ENGAGEHUB_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def credentials(client: TestClient) -> dict[str, str]:
    """Create one source per kind the fuzzer can authenticate as; headers for each route family."""
    hub = app_hub(client)
    with hub.db.session() as conn:
        _, segment_key = source_store.create(conn, "fuzz-segment", "segment")
        _, xng_key = source_store.create(conn, "fuzz-xng", "crossengage")
    hub.forget_sources()
    basic = base64.b64encode(f"{segment_key}:".encode()).decode()
    return {"basic": f"Basic {basic}", "xng": xng_key}


def auth_headers(path: str, creds: dict[str, str]) -> dict[str, str]:
    """The credentials a legitimate caller of ``path`` would send."""
    if path.startswith("/v1/"):
        return {"Authorization": creds["basic"]}
    if path.startswith("/crossengage/"):
        return {"X-XNG-AuthToken": creds["xng"], "X-XNG-ApiVersion": "1"}
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def send(client: TestClient, case: Any, extra: dict[str, str], oversize: int = 0) -> httpx.Response:
    """Send a schemathesis case through the started app (our TestClient owns the lifespan);
    with ``oversize``, its body is replaced by that many bytes (same content type)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "connection"}
    for name, value in extra.items():
        if name.lower() not in {h.lower() for h in headers} or name == "Authorization":
            headers[name] = value
    body: dict[str, Any] = {}
    if kwargs.get("files"):  # requests-style multipart: encode it the way requests would
        content, ctype = RequestEncodingMixin._encode_files(
            kwargs["files"], kwargs.get("data") or {}
        )
        headers["Content-Type"] = ctype
        body["content"] = content
    elif "json" in kwargs:
        body["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), dict | list):
        body["content"] = RequestEncodingMixin._encode_params(kwargs["data"])
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    if oversize:
        body = {"content": b"x" * oversize}
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params") or None,
        headers=headers,
        cookies=kwargs.get("cookies") or None,
        **body,
    )


def fuzz_operation(
    client: TestClient,
    operation: Any,
    mode: GenerationMode,
    label: str,
    extra: dict[str, str],
    examples: int = EXAMPLES,
    oversize: int = 0,
) -> None:
    """Run a bounded, reproducible Hypothesis search over one operation in one mode."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        response = send(client, case, extra, oversize)
        problem = error_shape_problem(response)
        if problem:
            raise AssertionError(f"{label}: {problem}")
        case.validate_response(response, checks=CHECKS)

    fuzz()


# schemathesis draws from `random` inside its strategies; Hypothesis warns about it.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_every_operation_survives_fuzzing(client: TestClient) -> None:
    schema = schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]
    creds = credentials(client)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lost its routes"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            extra = auth_headers(operation.path, creds)

            try:
                fuzz_operation(client, operation, mode, label, extra)
            except Unsatisfiable:  # nothing in this operation can be made invalid
                continue
            except (Exception, BaseExceptionGroup) as exc:  # collect all, fail once with all
                failures.append(f"{label}: {describe(exc)[:3000]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_every_operation_survives_anonymous_and_oversized_requests(client: TestClient) -> None:
    """The same checks with no credential at all, and with bodies just over each route's limit
    (anonymous: the pre-authentication limit; authenticated: the route family's)."""
    hub = app_hub(client)
    limits = hub.settings
    schema = schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]
    creds = credentials(client)
    failures: list[str] = []
    for operation in [result.ok() for result in schema.get_all_operations()]:
        ingest = operation.path.startswith(("/v1/", "/crossengage/", "/webhooks/"))
        runs: list[tuple[str, dict[str, str], int, int]] = [("anonymous", {}, 3, 0)]
        if operation.method.upper() in {"POST", "PUT", "PATCH", "DELETE"}:
            big = max(limits.max_batch_bytes, limits.max_webhook_bytes) if ingest else 0
            anonymous = big or limits.max_anonymous_body_bytes
            runs.append(("oversized anonymous", {}, 1, anonymous + 1))
            authed = big or limits.max_api_body_bytes
            runs.append(("oversized", auth_headers(operation.path, creds), 1, authed + 1))
        for name, extra, examples, oversize in runs:
            label = f"{operation.method.upper()} {operation.path} ({name})"
            try:
                fuzz_operation(
                    client, operation, GenerationMode.POSITIVE, label, extra, examples, oversize
                )
            except Unsatisfiable:
                continue
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{label}: {describe(exc)[:3000]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_unknown_paths_and_methods_answer_in_the_error_shape(
    client: TestClient, method: str
) -> None:
    response = client.request(method, "/no/such/path", headers=auth_headers("/api", {}))
    assert response.status_code == 404
    assert error_shape_problem(response) is None
    for route_path, methods in route_methods(client).items():
        if method in methods or "{" in route_path:
            continue
        answer = client.request(method, route_path, headers=auth_headers("/api", {}))
        assert answer.status_code == 405, (route_path, method, answer.status_code)
        assert error_shape_problem(answer) is None, (route_path, answer.text)


def describe(exc: BaseException) -> str:
    """An exception with the ones grouped inside it (Hypothesis wraps flaky failures)."""
    text = f"{type(exc).__name__}: {exc}"
    for inner in getattr(exc, "exceptions", ()):
        text += "\n  caused by " + describe(inner).replace("\n", "\n  ")
    return text


def route_methods(client: TestClient) -> dict[str, set[str]]:
    """Path -> methods for every route of the app."""
    found: dict[str, set[str]] = {}
    for route in flat_routes(client.app):
        found.setdefault(route.path, set()).update(route.methods)
    return found
