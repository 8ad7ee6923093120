"""The server and processor processes do not load pyarrow (and numpy with it) until a bulk
read needs them: tens of MB and a quarter of a second of start-up in every process."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import engagehub.app, engagehub.cli, engagehub.processing.runner, engagehub.registry
print(sorted(m for m in ("pyarrow", "numpy") if m in sys.modules))
"""


def test_serving_imports_neither_pyarrow_nor_numpy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
