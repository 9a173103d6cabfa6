"""Running the guard as the first statement of a cell.

An exception in a ``pre_run_cell`` callback does not stop IPython from running the cell, so the
check is made part of the cell: an AST transformer (``shell.ast_transformers``, in IPython 7.34
and 9 alike) inserts ``check_cell(key, paths)`` before the cell's first statement, and a failed
check raises before the user's code starts. The inserted call looks the guard up in this
module by ``key``, so nothing is put in the user's namespace. A cell that names no mount path
is left untouched while nothing is watched, and so is a cell of ``%drive_*`` line magics only.

A cell magic whose body runs the way IPython runs a cell (``%%checkpointed``, ``%%time``)
meets the transformer again with its body: the guard counts both as one cell (a
``pre_run_cell`` callback numbers cells), so a path is checked, and a failure to check is
told, once per cell.
"""

from __future__ import annotations

import ast
import itertools
import sys
from typing import TYPE_CHECKING, Any

from colab_magics.guard.paths import paths_in_tree

if TYPE_CHECKING:
    from colab_magics.guard import Guard

_INSTALLED: dict[int, GuardTransformer] = {}
# Cell numbers never repeat, across transformers too: a guard installed again (``%drive_guard
# on`` twice) must not take its new first cell for one it already checked.
_CELL_NUMBERS = itertools.count(1)


def check_cell(key: int, paths: list[str]) -> None:
    """What a guarded cell runs first (``key`` names the installed transformer)."""
    __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
    transformer = _INSTALLED.get(key)
    if transformer is None:
        # The cell was transformed by a guard since uninstalled: nothing left to check with.
        print("Drive guard: this cell was not checked (the guard was removed).", file=sys.stderr)
        return
    transformer.guard.run(paths, cell=transformer.cell)


class GuardTransformer(ast.NodeTransformer):
    """Inserts the guard's check at the top of each cell that names a mount path."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.key = id(self)
        self.cell = next(_CELL_NUMBERS)
        """Number of the cell being run (one ``pre_run_cell`` per cell, none for a body)."""
        _INSTALLED[self.key] = self

    def new_cell(self, info: Any = None) -> None:
        """``pre_run_cell`` callback (IPython 7 and later pass ``info``)."""
        self.cell = next(_CELL_NUMBERS)

    def visit_Module(self, node: ast.Module) -> ast.Module:
        # Only the cell's top level: no generic_visit, the cell's own nodes stay as they are.
        try:
            guard = self.guard
            if not guard.enabled or _only_drive_magics(node):
                return node
            paths = paths_in_tree(node, guard.mount_root)
            if not paths and not guard.watched:
                return node
            call = ast.parse(
                f"__import__({__name__!r}, fromlist=['check_cell'])"
                f".check_cell({self.key!r}, {paths!r})"
            ).body[0]
            # Line 1 for the inserted statement only: fixing the whole cell costs more.
            node.body.insert(_first_statement(node), ast.fix_missing_locations(call))
        except Exception as exc:  # raising would make IPython unregister the transformer
            self.guard.cannot_check(exc, cell=self.cell)
        return node


def _only_drive_magics(node: ast.Module) -> bool:
    """A cell of ``%drive_*`` line magics only: the guard never stands between the user and
    ``%drive_guard off`` or the ``%drive_sync pull`` its own message suggests."""
    return bool(node.body) and all(
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and stmt.value.func.attr == "run_line_magic"
        and stmt.value.args
        and isinstance(stmt.value.args[0], ast.Constant)
        and str(stmt.value.args[0].value).startswith("drive_")
        for stmt in node.body
    )


def _first_statement(node: ast.Module) -> int:
    """Where user code starts: after ``from __future__`` imports, which must stay first."""
    i = 0
    body = node.body
    while i < len(body) and isinstance(body[i], ast.ImportFrom) and body[i].module == "__future__":
        i += 1
    return i


def install(shell: Any, guard: Guard) -> GuardTransformer:
    """Guard every cell ``shell`` runs with ``guard`` (replacing a guard installed before)."""
    uninstall(shell)
    transformer = GuardTransformer(guard)
    shell.ast_transformers.append(transformer)
    shell.events.register("pre_run_cell", transformer.new_cell)
    return transformer


def installed(shell: Any) -> Guard | None:
    """The guard installed on ``shell``, if any."""
    for t in shell.ast_transformers:
        if isinstance(t, GuardTransformer):
            return t.guard
    return None


def uninstall(shell: Any) -> None:
    """Remove what :func:`install` added to ``shell``."""
    for t in [t for t in shell.ast_transformers if isinstance(t, GuardTransformer)]:
        shell.ast_transformers.remove(t)
        try:
            shell.events.unregister("pre_run_cell", t.new_cell)
        except ValueError:  # already gone
            pass
        _INSTALLED.pop(t.key, None)
