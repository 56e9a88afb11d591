"""The project's import graph: no cycles, and no computed imports outside the registry.

Pure `ast`, nothing imported, so it is fast and sees every import statement,
including those inside functions (an import deferred into a function to dodge
a circle is still a circle) and under `if TYPE_CHECKING:`.

Edges, between modules of the packages in PACKAGES only:
- `import a.b.c` -> a.b.c;
- `from a.b import c` -> a.b.c when a.b.c is a module, else a.b (c is a name
  that a.b, a module or a package's __init__, defines); relative imports are
  resolved against the importing module's package.
There is no edge from a module to the packages above it, although Python runs
`bench/data/__init__.py` before `bench.data.raw`: a package's __init__ that
imports its own submodules would otherwise close a "cycle" with each of them,
one Python resolves without trouble (a submodule reached through a partly
initialised package is still found). What does break at import time is a
module needing a *name* from an __init__ that is still running; that is the
`from a.b import c` edge to the package above, and it is counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "impls")

# The only places that import a module whose name is computed at run time.
ALLOWED_DYNAMIC_IMPORTS = {
    "bench/registry.py": "load_target, the one importer of 'package.module:attribute' names",
}

Graph = dict[str, dict[str, str]]  # module -> imported module -> "path:line" of the import


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> its file, for every .py under the packages."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              modules: dict[str, Path]) -> Iterator[str]:
    """The project modules one import statement reaches (see the module docstring)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    for alias in node.names:
        child = f"{base}.{alias.name}"
        yield child if child in modules else base


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that `name` is or lies in (None outside the project)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> Graph:
    """Every import edge between the packages' modules."""
    modules = module_files(root, packages)
    graph: Graph = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, path.name == "__init__.py", modules):
                owner = _owner(target, modules)
                if owner is not None:
                    where = f"{path.relative_to(root).as_posix()}:{node.lineno}"
                    graph[name].setdefault(owner, where)
    return graph


def _components(graph: Graph) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _shortest_cycle(graph: Graph, members: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start, inside = members[0], set(members)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in inside and w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def find_cycles(graph: Graph) -> list[str]:
    """One line per cycle: each edge with the file:line that makes it."""
    lines = []
    for comp in _components(graph):
        if len(comp) == 1 and comp[0] not in graph[comp[0]]:
            continue
        cycle = _shortest_cycle(graph, comp)
        hops = [f"{a} -> {b} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        line = "import cycle: " + ", ".join(hops)
        if len(comp) > len(cycle) - 1:  # more modules lie on cycles with these: name them all
            line += f"; all {len(comp)} modules on cycles with it: {', '.join(comp)}"
        lines.append(line)
    return lines


def _is_dynamic_import(call: ast.Call) -> bool:
    """importlib.import_module / import_module / __import__ / loader.exec_module / runpy."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__", "exec_module", "run_module", "run_path")


def dynamic_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[int]]:
    """File (relative, posix) -> lines calling a computed-name importer."""
    found: dict[str, list[int]] = {}
    for path in module_files(root, packages).values():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        lines = [n.lineno for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and _is_dynamic_import(n)]
        if lines:
            found[path.relative_to(root).as_posix()] = sorted(lines)
    return found


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph(ROOT))
    assert not cycles, "\n".join(cycles)


def test_computed_imports_only_in_the_registry() -> None:
    found = dynamic_imports(ROOT)
    stray = {f: lines for f, lines in found.items() if f not in ALLOWED_DYNAMIC_IMPORTS}
    assert not stray, f"import of a computed name outside {list(ALLOWED_DYNAMIC_IMPORTS)}: {stray}"
    assert set(found) == set(ALLOWED_DYNAMIC_IMPORTS), "an allowed place no longer imports"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def test_the_checks_see_deferred_cycles_and_computed_imports(tmp_path: Path) -> None:
    """The checks themselves: a cycle through a function-level import is found."""
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import A\n",  # package importing its submodule: fine
        "pkg/a.py": "from pkg import b\nA = 1\n",
        "pkg/b.py": "def f():\n    from . import c\n",
        "pkg/c.py": "import importlib\nimportlib.import_module('x')\nimport pkg.a\n",
        "pkg/d.py": "from pkg import A\n",  # a name from the package's own __init__
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.d"] == {"pkg": "pkg/d.py:1"}
    assert find_cycles(graph) == [
        "import cycle: pkg.a -> pkg.b (pkg/a.py:1), pkg.b -> pkg.c (pkg/b.py:2), "
        "pkg.c -> pkg.a (pkg/c.py:3)"]
    assert dynamic_imports(tmp_path, ("pkg",)) == {"pkg/c.py": [2]}
