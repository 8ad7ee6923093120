"""One retry rule: errors say transient or terminal by marker; unknown errors are transient."""

from __future__ import annotations

import pytest

from engagehub import errors
from engagehub.destinations.errors import TerminalDeliveryError, TransientDeliveryError, classify
from engagehub.messaging.providers.base import (
    ProviderError,
    TerminalProviderError,
    TransientProviderError,
    http_error,
    provider_error,
)


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        *[(400, True), (401, True), (404, True), (422, True), (408, False), (429, False)],
        *[(500, False), (502, False), (503, False), (301, False), (302, False), (100, False)],
    ],
)
def test_one_http_rule_for_destinations_and_providers(status: int, terminal: bool) -> None:
    assert errors.terminal_status(status) is terminal
    assert classify(status) is (TerminalDeliveryError if terminal else TransientDeliveryError)
    failure = http_error(f"HTTP {status}", status, "21211")
    assert errors.is_terminal(failure) is terminal
    assert (failure.status, failure.provider_code, failure.message) == (
        status,
        "21211",
        f"HTTP {status}",
    )


def test_success_is_not_an_error() -> None:
    assert classify(200) is None
    assert classify(204) is None


def test_unknown_errors_are_transient() -> None:
    assert not errors.is_terminal(RuntimeError("surprise"))
    assert not errors.is_terminal(KeyError("x"))
    assert not errors.is_terminal(errors.EngagehubError("unmarked"))


def test_markers_sit_on_every_retry_classified_error() -> None:
    assert errors.is_terminal(TerminalDeliveryError("no"))
    assert not errors.is_terminal(TransientDeliveryError("later", retry_after=3.0))
    assert errors.is_terminal(provider_error("refused", terminal=True))
    assert not errors.is_terminal(provider_error("busy", terminal=False))
    assert isinstance(TransientProviderError("x"), errors.TransientException)
    assert isinstance(TerminalProviderError("x"), errors.TerminalException)
    assert not errors.is_terminal(errors.TransientError("storage busy"))


def test_provider_errors_are_in_the_error_tree() -> None:
    exc = provider_error("SendGrid 400: bad from", terminal=True, status=400)
    assert isinstance(exc, ProviderError)
    assert isinstance(exc, errors.EngagehubError)
    assert exc.body() == {
        "error": {"code": "provider_failed", "message": "SendGrid 400: bad from", "details": {}}
    }
