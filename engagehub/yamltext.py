"""YAML parsing through libyaml when it is there: the taxonomy alone is 8x faster to read.

Every process reads the taxonomy, the suppression rules, the classifier lists and the export
schema at start-up; pure-Python ``yaml.safe_load`` spent ~160 ms of each start on them, libyaml's
``CSafeLoader`` ~20 ms. Both are the safe loader: only plain data, no Python objects.
"""

from __future__ import annotations

from typing import Any

import yaml

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def safe_load(text: str) -> Any:
    """The plain data in ``text``, as ``yaml.safe_load`` reads it; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
