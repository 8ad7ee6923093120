"""The import contracts can fail: the cycle finder on small graphs, and the declared contracts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

from tests.architecture.contracts import cycles
from tests.architecture.diagram import LAYERS

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


ROUTE_OR_CLI = (
    "api",
    "csv_import_api",
    "summary",
    "cli",
    "click_pages",
    "confirm_pages",
    "recipient_pages",
    "subscribe_pages",
)
"""Feature modules that may use the HTTP/CLI plumbing above them (they are routes or commands)."""


def test_package_layers_are_the_documented_layers() -> None:
    """The layers contract checks the diagram's layers, in its order; its exceptions are only
    a feature's route and CLI modules (plus privacy's pending-requests gauge)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = {c["id"]: c for c in config["contracts"]}["package-layers"]
    assert contract["type"] == "layers"
    declared = [[m.strip() for m in layer.split(":")] for layer in contract["layers"]]
    expected = [
        [f"engagehub.{p}" for p in packages if p != "engagehub"] for packages in LAYERS.values()
    ]
    assert declared == expected
    for ignored in contract["ignore_imports"]:
        importer = ignored.split(" -> ")[0]
        module = importer.rsplit(".", 1)[-1]
        assert module in ROUTE_OR_CLI or importer == "engagehub.privacy.requests", ignored
