"""The import contracts can fail: the cycle finder on small graphs, and the declared contracts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

from tests.architecture.contracts import cycles

ROOT = Path(__file__).resolve().parents[2]


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    return graph


def test_cycles_finds_every_cycle_and_nothing_else() -> None:
    graph = _graph(
        ("p.a", "p.b"),
        ("p.b", "p.c"),
        ("p.c", "p.a"),  # a -> b -> c -> a
        ("p.d", "p.e"),
        ("p.e", "p.d"),  # d <-> e
        ("p.f", "p.a"),  # f only points into a cycle
        ("p.a", "q.x"),  # outside the modules looked at
        ("q.x", "p.a"),
    )
    modules = {m for m in graph.modules if m.startswith("p.")}
    assert cycles(graph, modules) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"]]
    assert cycles(_graph(("p.a", "p.b"), ("p.b", "p.c")), {"p.a", "p.b", "p.c"}) == []


def test_the_issue_22_contracts_are_declared() -> None:
    """vendors pure, storage below features, processors without HTTP, no cycles."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["id"]: c for c in config["contracts"]}
    assert contracts["no-cycles"]["type"] == "acyclic_modules"
    assert contracts["vendors-pure"]["source_modules"] == ["engagehub.vendors"]
    assert "engagehub.storage" in contracts["vendors-pure"]["forbidden_modules"]
    storage = contracts["storage-below-features"]["forbidden_modules"]
    assert {"engagehub.processing", "engagehub.scaleout", "engagehub.consent"} <= set(storage)
    http = contracts["processors-no-http"]["forbidden_modules"]
    assert {"fastapi", "engagehub.api", "engagehub.ingest", "engagehub.web"} <= set(http)
    assert "lint-imports" in (ROOT / "scripts" / "test").read_text()
