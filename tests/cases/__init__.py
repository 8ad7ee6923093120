"""Recorded vendor payloads (``<case>.json``, verbatim) and what parsing must yield
(``<case>.expected.json``). ``ENGAGEHUB_REGEN_CASES=1 pytest tests/vendors`` rewrites the
expectations from the current parsers; review the diff before committing it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import orjson

from engagehub.model import IncomingEvent, ParseResult

CASES = Path(__file__).parent


def case_files(vendor: str) -> list[Path]:
    """Every recorded payload of a vendor."""
    return sorted(
        p
        for p in (CASES / vendor).iterdir()
        if p.is_file() and not p.name.endswith(".expected.json")
    )


def event_dict(ev: IncomingEvent) -> dict[str, Any]:
    """An event as compared with expectations (raw is checked separately)."""
    data = dataclasses.asdict(ev)
    data.pop("raw")
    return data


def result_dict(result: ParseResult) -> dict[str, Any]:
    """A whole parse result as compared with expectations."""
    return {
        "events": [event_dict(e) for e in result.events],
        "rejected": [
            {"index": r.index, "code": r.error.code, "message": r.error.message}
            for r in result.rejected
        ],
    }


def check(case: Path, actual: dict[str, Any]) -> None:
    """Compare with ``<case>.expected.json`` (or rewrite it when regenerating)."""
    expected_path = case.with_name(case.name.removesuffix(".json") + ".expected.json")
    rendered = orjson.dumps(actual, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if os.environ.get("ENGAGEHUB_REGEN_CASES"):
        expected_path.write_bytes(rendered)
        return
    assert expected_path.exists(), f"{expected_path} missing; see tests/cases/__init__.py"
    assert orjson.loads(rendered) == orjson.loads(expected_path.read_bytes())
