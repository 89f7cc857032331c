"""The house's structure, read from the code's own imports (docs/architecture.md).

Every module under ``src/chipmix`` is parsed (imports inside functions and under
``TYPE_CHECKING`` count too) and checked against the rules below: no import cycle between
modules, no arrow a room must never draw, nothing but ``report/`` and ``cli/`` prints,
nothing but ``bench/`` imports torch, no inner room calls the façade (``chipmix.api``) or
the command line. The rules are data: a new room adds its line here and in the doc.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import chipmix

SRC = Path(chipmix.__file__).parent
PACKAGE = "chipmix"

# -- the rules (docs/architecture.md, "Never") --------------------------------------------
# A room is the first name under `chipmix`: a package (`perf`, `layouts`, ...) or a
# top-level module (`api`, `errors`, `results`, ...). `__init__` is the package itself.
FOUNDATION = frozenset({"errors", "names", "common"})
"""Below every room: they import nothing of chipmix but each other."""
PLANNING = frozenset({"planning"})
"""The planner's room."""

MAY_ONLY: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "names": frozenset({"errors"}),
    "common": frozenset({"errors"}),
    "catalog": FOUNDATION,
    "workload": FOUNDATION,
    "perf": FOUNDATION | {"catalog", "workload"},
    "serve": FOUNDATION | {"catalog", "workload", "perf", "uncertainty"},
    "uncertainty": FOUNDATION,
    "pricing": FOUNDATION | {"catalog"},
}
"""Rooms near the top of the flow, with every room they may import."""

NEVER: dict[str, frozenset[str]] = {
    "layouts": PLANNING | {"serve", "sim", "validate", "bench", "report", "cli", "api"},
    "results": PLANNING | {"layouts", "sim", "validate", "bench", "report", "cli", "api"},
    "planning": frozenset({"sim", "validate", "bench", "report", "cli", "api"}),
    "sim": frozenset({"validate", "bench", "report", "cli", "api"}),
    "validate": PLANNING | {"sim", "bench", "report", "cli", "api"},
    "bench": PLANNING | {"layouts", "serve", "sim", "report", "cli", "api"},
    "report": frozenset({"cli", "api"}),
    "api": frozenset({"cli", "report"}),
}
"""Rooms further down, with the rooms they must never import."""

PRINTERS = frozenset({"report", "cli"})
"""The only rooms that print (``print(``, rich, writes to stdout/stderr)."""
TORCH_ROOMS = frozenset({"bench"})
"""The only room that imports torch (an optional extra)."""
FACADE = frozenset({"api", "cli"})
"""Imported only by the package itself (``chipmix/__init__``) and the command line."""
FACADE_IMPORTERS = frozenset({"__init__", "cli"})

MAX_LINES = 500


# -- reading the imports -------------------------------------------------------------------
@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def room(self) -> str:
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> dict[str, Module]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        out[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = _modules()


def _package_of(module: Module) -> str:
    return module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]


def _imports(module: Module) -> set[str]:
    """Every name ``module`` imports (absolute), with ``from a import b`` giving ``a.b``
    when that is a module and ``a`` otherwise."""
    found: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(module).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
            found.update(subs or {base})
    return found


IMPORTS = {name: _imports(module) for name, module in MODULES.items()}


def _room_of(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _internal_edges() -> dict[str, set[str]]:
    return {
        name: {target for target in targets if target in MODULES and target != name}
        for name, targets in IMPORTS.items()
    }


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


# -- the tests -------------------------------------------------------------------------------
def test_no_import_cycle_between_modules() -> None:
    cycles = [sorted(c) for c in _cycles(_internal_edges())]
    assert not cycles, f"import cycles: {cycles}"


def _arrows() -> list[tuple[str, str, str, str]]:
    """(module, imported module, its room, importer's room) for every chipmix import."""
    out = []
    for name, targets in IMPORTS.items():
        room = MODULES[name].room
        for target in sorted(targets):
            target_room = _room_of(target)
            if target_room is not None and target_room != room:
                out.append((name, target, target_room, room))
    return out


def test_no_forbidden_arrow() -> None:
    bad = []
    for name, target, target_room, room in _arrows():
        if room in MAY_ONLY and target_room not in MAY_ONLY[room]:
            bad.append(f"{name} imports {target} ({room} may import only {sorted(MAY_ONLY[room])})")
        if target_room in NEVER.get(room, ()):
            bad.append(f"{name} imports {target} ({room} never imports {target_room})")
        if target_room in FACADE and room not in FACADE_IMPORTERS:
            bad.append(f"{name} imports {target} (only chipmix and cli/ call the façade)")
    assert not bad, "\n".join(bad)


def test_every_room_has_a_rule() -> None:
    """A new room says what it may import: a line in MAY_ONLY or NEVER, and in the doc."""
    rooms = {module.room for module in MODULES.values()} - {"__init__"}
    ruled = set(MAY_ONLY) | set(NEVER) | {"cli"}
    assert rooms <= ruled, f"rooms without a rule: {sorted(rooms - ruled)}"
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    undocumented = [room for room in sorted(rooms) if f"`{room}" not in doc]
    assert not undocumented, f"rooms missing from docs/architecture.md: {undocumented}"


def _prints(module: Module) -> list[str]:
    found = []
    for node in ast.walk(module.tree):
        match node:
            case ast.Call(func=ast.Name(id="print" | "pprint" as name)):
                found.append(f"{name}( at line {node.lineno}")
            case ast.Attribute(value=ast.Name(id="sys"), attr="stdout" | "stderr" as stream):
                found.append(f"sys.{stream} at line {node.lineno}")
    found += [f"imports {t}" for t in IMPORTS[module.name] if t.split(".")[0] == "rich"]
    return found


def test_only_report_and_cli_print() -> None:
    bad = {
        name: _prints(module)
        for name, module in MODULES.items()
        if module.room not in PRINTERS and _prints(module)
    }
    assert not bad, f"printing outside report/ and cli/: {bad}"


def test_only_bench_imports_torch() -> None:
    bad = sorted(
        name
        for name, targets in IMPORTS.items()
        if MODULES[name].room not in TORCH_ROOMS
        and any(t.split(".")[0] == "torch" for t in targets)
    )
    assert not bad, f"torch imported outside bench/: {bad}"


def test_no_module_over_the_line_cap() -> None:
    lengths = {
        path.relative_to(SRC).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in SRC.rglob("*.py")
    }
    over = {p: n for p, n in lengths.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


# -- no public name hides a package -------------------------------------------------------
def _walk() -> list[tuple[str, bool]]:
    """Every module under chipmix, with whether it is a package."""
    return [
        (info.name, info.ispkg)
        for info in pkgutil.walk_packages(chipmix.__path__, prefix=f"{PACKAGE}.")
        if not info.name.endswith(".__main__")
    ]


@pytest.mark.parametrize(("name", "is_package"), _walk())
def test_every_module_imports_and_every_package_is_its_parents_attribute(
    name: str, is_package: bool
) -> None:
    """``import chipmix.X.Y as m`` gives the module, and no function or object of the same
    name in the parent hides a package (``chipmix.search``, the function, once hid the
    package ``chipmix/search/``, now ``chipmix/layouts/``)."""
    if name.split(".")[:2] == [PACKAGE, "bench"]:
        pytest.importorskip("torch")  # the bench needs the optional chipmix[bench] extra
    module = importlib.import_module(name)
    assert isinstance(module, types.ModuleType)
    if is_package:
        parent_name, _, attr = name.rpartition(".")
        shown = getattr(importlib.import_module(parent_name), attr, module)
        assert shown is module, f"{parent_name}.{attr} is {shown!r}, hiding the package {name}"


def test_the_documented_functions_stay_functions() -> None:
    for name in ("estimate", "search", "compare", "plan", "budget", "simulate"):
        assert callable(getattr(chipmix, name)), name
        assert not isinstance(getattr(chipmix, name), types.ModuleType), name
