"""docs/architecture.md's package diagram is the code's: regenerated from the imports, compared."""

from __future__ import annotations

from tests.architecture.diagram import DOC, LAYERS, current_block, layer_of, package_edges, render


def test_every_package_has_a_layer() -> None:
    placed = layer_of()
    assert sum(len(p) for p in LAYERS.values()) == len(placed), "a package is in two layers"
    missing = sorted(set(package_edges()) - set(placed))
    assert missing == [], f"place {missing} in a layer of tests/architecture/diagram.py LAYERS"


def test_the_documented_diagram_is_the_real_one() -> None:
    documented = current_block(DOC.read_text())
    assert documented == render(package_edges()), (
        "docs/architecture.md disagrees with the imports: run python -m tests.architecture.diagram"
    )


def test_storage_and_vendors_point_only_downwards() -> None:
    """The two layers import-linter keeps pure: nothing above them appears among their imports."""
    edges = package_edges()
    layers = list(LAYERS)
    where = layer_of()
    for package in ("storage", "vendors"):
        for imported in edges[package]:
            assert layers.index(where[imported]) >= layers.index(where[package]), (
                package,
                imported,
            )
