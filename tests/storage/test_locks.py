"""The advisory-lock ids live in one module, so two features can never pick the same one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from engagehub.storage import locks

PACKAGE = Path(__file__).resolve().parents[2] / "engagehub"


def test_lock_ids_are_distinct() -> None:
    ids = {k: v for k, v in vars(locks).items() if k.isupper() and isinstance(v, int)}
    assert len(ids) == 4
    assert len(set(ids.values())) == len(ids), ids


def test_no_module_but_locks_defines_an_advisory_lock_number() -> None:
    """Every pg_advisory call outside storage/locks.py passes a name from it, not a literal."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "locks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(re.search(r"(^|_)LOCK(_|$)", n) for n in names) and isinstance(
                    node.value.value, int
                ):
                    offenders.append(f"{path.relative_to(PACKAGE)}: {names}")
    assert offenders == []
