"""The npm packages scripts/test installs into tests/js (pinned by its package-lock.json)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

JS = Path(__file__).parent / "js"
MODULES = JS / "node_modules"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def package_file(package: str, path: str) -> Path:
    """A file of an installed package; a clear failure (never a skip) when npm ci did not run."""
    found = MODULES / package / path
    if not found.is_file():
        pytest.fail(f"{found} is missing: run ./scripts/test (it runs npm ci in {JS})")
    return found


def chromium() -> str:
    """Debian's chromium, which Playwright drives (it cannot download its own here)."""
    found = shutil.which("chromium")
    if not found:
        pytest.fail("chromium is not installed (scripts/test installs it)")
    return found


def node() -> str:
    """The node binary the Node.js client libraries run on."""
    found = shutil.which("node")
    if not found:
        pytest.fail("node is not installed (scripts/test installs npm, which brings it)")
    return found
