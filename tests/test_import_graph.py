"""The package's import graph: no cycles, and the core layers never reach the IPython surface.

Built from the source (``ast``), so an import inside a function counts as much as one at the
top: a cycle dodged by a late import is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import colab_magics

PACKAGE = Path(colab_magics.__file__).parent
CORE = ("drive", "sync", "checkpoint", "guard", "gcs", "emulator")
"""Layers that a plain Python user calls without a notebook."""
SURFACE = {"colab_magics", "colab_magics.magics", "colab_magics.ui"}
"""The package ``__init__`` (which loads the extension), the magics and the widgets."""
FORBIDDEN_OUTSIDE = ("IPython", "ipywidgets", "ipykernel")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(edges, outside)``: for each module, the package modules it imports, and the
    top-level names of the modules outside the package it imports."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    outside: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    edges[name].add(target)
                elif not target.startswith("colab_magics"):
                    outside[name].add(target.split(".")[0])
    return edges, outside


def _cycle_from(start: str, edges: dict[str, set[str]]) -> list[str] | None:
    """A shortest import cycle through ``start``, or None (a package importing its own
    submodules, as every ``__init__`` does, is not a cycle)."""
    frontier, seen = [[start]], {start}
    while frontier:
        path = frontier.pop(0)
        for nxt in sorted(edges[path[-1]]):
            if nxt == start and not (len(path) > 1 and path[1].startswith(start + ".")):
                return [*path, start]
            if nxt not in seen and not nxt.startswith(start + "."):
                seen.add(nxt)
                frontier.append([*path, nxt])
    return None


def _reaches(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_module_imports_itself_through_others():
    edges, _ = import_graph()
    # A package's __init__ importing its submodules (and they the package's siblings) is how
    # a package is made; what is forbidden is two modules needing each other.
    plain = {
        m: {t for t in targets if not m.startswith(t + ".") and t != m.rpartition(".")[0]}
        for m, targets in edges.items()
    }
    cycles = {m: c for m in plain if (c := _cycle_from(m, plain)) and not m.endswith("__init__")}
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles.values())


def test_core_layers_never_reach_ipython_widgets_or_the_extension():
    edges, outside = import_graph()
    for module in edges:
        layer = module.split(".")[1] if module.count(".") else ""
        if layer not in CORE:
            continue
        reached = _reaches(module, edges) | {module}
        assert not reached & SURFACE, f"{module} imports {sorted(reached & SURFACE)}"
        needs = {lib for m in reached for lib in outside[m]} & set(FORBIDDEN_OUTSIDE)
        assert not needs, f"{module} imports {sorted(needs)} (directly or through the package)"
