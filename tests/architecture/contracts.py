"""A custom import-linter contract: no import cycle between any two modules of the package.

import-linter's ``acyclic_siblings`` compares siblings within one package; this one looks at the
whole module graph (imports inside functions included, ``TYPE_CHECKING`` ones not), so a cycle
that crosses packages — ``storage.events`` -> ``privacy.suppress`` -> ``storage.events`` —
breaks it too. Declared in ``pyproject.toml`` (``contract_types``); ``lint-imports`` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import grimp
from importlinter import Contract, ContractCheck, fields, output


def cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    mods = sorted(modules)
    allowed = set(mods)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.find_modules_directly_imported_by(v) & allowed):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    try:
        for m in mods:
            if m not in index:
                visit(m)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


class AcyclicModulesContract(Contract):
    """No module of ``root`` imports, directly or not, a module that imports it back."""

    type_name = "acyclic_modules"
    root = fields.StringField()

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        """Kept when the module graph under ``root`` has no cycle."""
        root = str(self.root)
        modules = {m for m in graph.modules if m == root or m.startswith(root + ".")}
        found = cycles(graph, modules)
        return ContractCheck(kept=not found, metadata={"cycles": found, "graph": graph})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """Each cycle, with one import chain that closes it."""
        graph: grimp.ImportGraph = check.metadata["graph"]
        for component in check.metadata["cycles"]:
            output.print_error(f"Cycle of {len(component)} modules: {', '.join(component)}")
            first = component[0]
            for other in component[1:2]:
                for a, b in ((first, other), (other, first)):
                    chain = graph.find_shortest_chain(importer=a, imported=b)
                    if chain:
                        output.print("    " + " -> ".join(chain))
            output.new_line()
