"""The import graph of ``dispatcher/`` and ``workers/``: layers import downward only, and no file imports
another that imports it back (directly or round a loop). docs/architecture.md, "Layers", says why.

Read with the standard library's ``ast`` (nothing is imported): every ``import`` and ``from ... import``,
at module level or inside a function. Imports under ``if TYPE_CHECKING:`` count for the layers (a type
from above is a leak too) but not for cycles (they never run).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dispatcher", "workers")

# Lowest first. A module may import its own layer and those below. The first matching prefix wins
# (a module name, or a package name followed by a dot).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("dispatcher.errors", "dispatcher.i18n", "dispatcher.keys")),
    ("vendors", ("dispatcher.vendors",)),
    (
        "contacts and chunker",
        (
            "dispatcher.contacts",
            "dispatcher.chunker",
            "dispatcher.config",
            "dispatcher.reasons",
            "dispatcher.text",
            "dispatcher.backoff",
            "dispatcher.labels",
            "dispatcher.caps",
        ),
    ),
    (
        "store",
        (
            "dispatcher.store",
            "dispatcher.ratelimit",
            "dispatcher.operations.identity",
            "dispatcher.operations.fingerprint",
            "dispatcher.operations.heartbeat",
            "dispatcher.operations.counters",
            "dispatcher.operations.deployment",
            "dispatcher.operations.logs",
        ),
    ),
    (
        "dispatch",
        (
            "dispatcher.decisions",
            "dispatcher.dispatch",
            "dispatcher.runtime",
            "dispatcher.sendloop",
            "dispatcher.campaigns",
            "dispatcher.scheduler",
            "dispatcher.waiting",
            "dispatcher.proofs",
            "dispatcher.keywords",
            "dispatcher.routing",
            "dispatcher.balance_guard",
            "dispatcher.failover",
            "dispatcher.variants",
            "dispatcher.schedules",
            "dispatcher.unknowns",
        ),
    ),
    ("results", ("dispatcher.results",)),
    ("operations", ("dispatcher.operations",)),
    ("workers", ("workers",)),
    (
        "web and cli",
        ("dispatcher.web", "dispatcher.cli", "dispatcher.__main__", "dispatcher"),
    ),
)
# The simulator is a second, independent reading of the vendors' documents: it imports nothing of the
# dispatcher's, and only the web and cli layer (the demo, ``dispatcher simulate``) import it.
SIMULATOR = "dispatcher.simulator"
# Known upward imports of a type only, each to be removed: ``transport.for_account`` takes an
# ``AccountConfig`` (the glue between settings and transport belongs above the vendors; left to the
# transport's rewrite, which owns that module).
TYPE_ONLY_EXCEPTIONS = {("dispatcher.vendors.transport", "dispatcher.config")}


@dataclass
class Module:
    name: str
    path: Path
    imports: set[str] = field(default_factory=set)  # every import that runs
    type_imports: set[str] = field(default_factory=set)  # under TYPE_CHECKING


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: Module, known: set[str]) -> None:
        self.module, self.known, self.type_only = module, known, False

    def _add(self, name: str) -> None:
        if name in self.known and name != self.module.name:
            (self.module.type_imports if self.type_only else self.module.imports).add(name)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_only, was = True, self.type_only
            for child in node.body:
                self.visit(child)
            self.type_only = was
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.module.name.split(".")
            if self.module.path.name != "__init__.py":
                package = package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([node.module] if node.module else [])])
        # ``from package import submodule`` depends on the submodule; anything else on ``base`` itself.
        submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in self.known]
        for name in submodules:
            self._add(name)
        if len(submodules) < len(node.names):
            self._add(base)


@cache
def modules() -> dict[str, Module]:
    found = {
        _module_name(path): Module(_module_name(path), path)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts  # Alembic's scripts, loaded by Alembic alone
    }
    for module in found.values():
        _Imports(module, set(found)).visit(ast.parse(module.path.read_text(encoding="utf-8")))
    return found


def layer_of(name: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_given_every_module_then_it_imports_only_its_layer_and_those_below() -> None:
    upward = [
        f"{m.name} ({LAYERS[layer_of(m.name)][0]}) imports {name} ({LAYERS[layer_of(name)][0]})"
        for m in modules().values()
        if not m.name.startswith(SIMULATOR)
        for name in sorted(m.imports | (m.type_imports - {b for a, b in TYPE_ONLY_EXCEPTIONS if a == m.name}))
        if not name.startswith(SIMULATOR) and layer_of(name) > layer_of(m.name)
    ]
    assert upward == []


def test_given_the_simulator_then_it_stands_alone_and_only_the_top_layer_uses_it() -> None:
    top = len(LAYERS) - 1
    crossing = [
        f"{m.name} imports {name}"
        for m in modules().values()
        for name in sorted(m.imports | m.type_imports)
        if m.name.startswith(SIMULATOR) != name.startswith(SIMULATOR)
        and (m.name.startswith(SIMULATOR) or layer_of(m.name) != top)
    ]
    assert crossing == []


def test_given_the_files_then_no_two_import_each_other_directly_or_round_a_loop() -> None:
    assert cycles({name: m.imports for name, m in modules().items()}) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_given_a_graph_then_its_loops_are_found(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert sorted(cycles(graph)) == expected


def test_given_an_upward_import_then_the_layer_rule_sees_it() -> None:
    assert (
        layer_of("dispatcher.campaigns")
        > layer_of("dispatcher.store.chunks")
        > layer_of("dispatcher.chunker")
    )
    assert layer_of("dispatcher.web.pages") > layer_of("workers.tasks") > layer_of("dispatcher.results.inbox")
