"""Which mount paths a cell names: its string literals that start with the mount root.

A literal with a wildcard (``".../data/*.jpg"``) or an f-string (``f".../data/{split}"``)
names the folder before the first part that is not fixed. Arguments of magics and shell
escapes (``%drive_sync pull ...``, ``!ls ...``) are left out: the magic does its own checking,
and the fix the guard suggests is one of them.
"""

from __future__ import annotations

import ast
import os
import re

_WILDCARDS = re.compile(r"[*?\[]")
# What IPython turns ``%magic`` / ``%%magic`` / ``!cmd`` lines into before the AST exists.
_IPYTHON_CALLS = {"run_line_magic", "run_cell_magic", "system", "getoutput"}
_QUOTED = re.compile(r"""(?:[rRbBuU]{0,2})("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")


def _under(text: str, root: str) -> str | None:
    """``text`` as a normalized path under ``root``, cut before any wildcard; else None."""
    if text != root and not text.startswith(root + "/"):
        return None
    match = _WILDCARDS.search(text)
    if match:
        text = text[: match.start()].rpartition("/")[0] or root
    path = os.path.normpath(text)
    return path if path == root or path.startswith(root + "/") else None


def _ipython_call(node: ast.Call) -> bool:
    func = node.func
    return isinstance(func, ast.Attribute) and func.attr in _IPYTHON_CALLS


def paths_in_tree(tree: ast.AST, root: str) -> list[str]:
    """Mount paths named by string literals in ``tree``, in order of appearance, once each."""
    root = os.path.normpath(root)
    skip: set[int] = set()
    found: list[tuple[tuple[int, int], str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _ipython_call(node):
            skip.update(id(n) for arg in node.args for n in ast.walk(arg))
        elif isinstance(node, ast.JoinedStr) and id(node) not in skip:
            skip.update(id(n) for n in ast.walk(node))
            fixed, dynamic = "", False
            for part in node.values:
                if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                    dynamic = True
                    break
                fixed += part.value
            if dynamic:
                fixed = fixed.rpartition("/")[0]  # the folder the dynamic part lies in
            path = _under(fixed, root)
            if path:
                found.append((_where(node), path))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            path = _under(node.value, root)
            if path:
                found.append((_where(node), path))
    # ast.walk goes breadth first: sort back into the order of the source.
    return list(dict.fromkeys(path for _, path in sorted(found)))


def _where(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def paths_in_source(source: str, root: str) -> list[str]:
    """Mount paths a cell's source names (IPython syntax too: a cell that does not parse as
    Python falls back to its quoted strings)."""
    root = os.path.normpath(root)
    if root not in source:
        return []  # the common case, decided without parsing
    try:
        return paths_in_tree(ast.parse(source), root)
    except SyntaxError:
        found: dict[str, None] = {}
        for line in source.splitlines():
            if line.lstrip().startswith(("%", "!")):
                continue
            for quoted in _QUOTED.findall(line):
                path = _under(quoted[1:-1], root)
                if path:
                    found[path] = None
        return list(found)
