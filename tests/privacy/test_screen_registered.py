"""Storage imports no feature, yet every process screens erased people out of its appends."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "first_import",
    ["engagehub.storage.events", "engagehub.storage", "engagehub.cli.imports", "engagehub.model"],
)
def test_any_process_has_the_privacy_screen_registered(first_import: str) -> None:
    """Whatever a process imports first, storage.events runs privacy's screen on appends."""
    code = (
        f"import {first_import}\n"
        "from engagehub.storage import events\n"
        "print([f'{s.__module__}.{s.__name__}' for s in events.screens()])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "['engagehub.privacy.suppress.screen']"
