"""``engagehub --version`` prints the package's semantic version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from engagehub import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_semantic_and_printed() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[-.]?(?:a|b|rc|dev)\d*)?", declared)
    assert __version__ == declared
    out = subprocess.run(
        [sys.executable, "-m", "engagehub", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == f"engagehub {declared}"
