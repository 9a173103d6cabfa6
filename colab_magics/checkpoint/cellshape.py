"""A static look at a checkpointed cell before it runs: shapes that cannot resume correctly are
refused, shapes that would resume wrongly or not at all are warned about.

Nothing here runs the cell: it reads the cell's syntax tree, and looks names up in the
namespace without calling anything.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Mapping
from typing import Any

LOOPS = ("range", "batches")
_WRAPPERS = ("enumerate", "tqdm", "iter")


class CellShapeError(ValueError):
    """A cell whose loops cannot be checkpointed as written; the message shows the rewrite."""


def check_cell(
    source: str,
    name: str = "ckpt",
    namespace: Mapping[str, Any] | None = None,
    saved: Collection[str] = (),
    folder: bool = False,
) -> list[str]:
    """Warnings about the Python ``source`` of a cell that sees the checkpoint as ``name``
    (``saved``: the names in ``--save``; ``folder``: a ``--dir`` the trainer checkpoints into
    itself); :class:`CellShapeError` for a shape that cannot work. A cell that does not parse
    passes (running it reports the syntax error as usual)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    shape = _Shape(name)
    shape.visit(tree)
    if len(shape.loops) > 1:
        raise CellShapeError(
            f"the cell has more than one {name}.range() loop or {name}.batches() loop: "
            "use one per checkpointed cell"
        )
    for call, outer in shape.loops:
        if outer is not None:
            raise CellShapeError(_rewrite(name, call, outer))
    warnings = []
    if not shape.uses and not folder:
        warnings.append(
            f"this cell never calls {name}.range, {name}.batches or {name}.save: nothing of it "
            f"will be resumable (loop with: for epoch, batch in {name}.batches(loader, epochs=E):)"
        )
    bound = _bound_loaders(tree)
    for text, in_step, saves in shape.direct:
        # Checkpoints fall inside such a loop when it is the cell's training loop (no
        # checkpointed loop around it) or when it calls save(); inside ckpt.range they fall
        # between epochs, whose new order comes from the generators the checkpoint restores.
        if not (saves or (not in_step and not shape.loops)):
            continue
        if _shuffled(text, bound, namespace or {}, saved):
            warnings.append(
                f"{text} is a shuffled DataLoader iterated directly: a resume in the middle of an "
                "epoch would draw a new order (samples repeated or skipped); loop with "
                f"for epoch, batch in {name}.batches({text}, epochs=E): to resume it exactly"
            )
    return warnings


class _Shape(ast.NodeVisitor):
    """Collects the checkpoint's loop calls with the loop around each, whether the cell uses
    the checkpoint at all, and loops over a plain name outside a checkpointed step."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loops: list[tuple[ast.Call, ast.AST | None]] = []
        self.uses = False
        self.direct: list[tuple[str, bool, bool]] = []
        """Loops over a name: (its text, inside a checkpointed loop, calls save())."""
        self._outer: list[ast.AST] = []
        self._in_step = 0

    def _is_ours(self, node: ast.AST, attrs: tuple[str, ...]) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr in attrs
            and isinstance(node.value, ast.Name)
            and node.value.id == self.name
        )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self._is_ours(node, (*LOOPS, "save")):
            self.uses = True
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if self._is_ours(node.func, LOOPS):
            self.loops.append((node, self._outer[-1] if self._outer else None))
        self.generic_visit(node)

    def _loop(self, node: ast.AST, head: list[ast.AST], body: list[ast.AST]) -> None:
        for child in head:
            self.visit(child)
        ours = isinstance(node, (ast.For, ast.AsyncFor)) and _is_call_of(node.iter, self)
        if isinstance(node, (ast.For, ast.AsyncFor)) and not ours:
            target = _iterated(node.iter)
            if target is not None:
                self.direct.append((target, self._in_step > 0, _saves_in(body, self.name)))
        if ours:
            self._in_step += 1
        else:
            self._outer.append(node)
        for child in body:
            self.visit(child)
        if ours:
            self._in_step -= 1
        else:
            self._outer.pop()

    def visit_For(self, node: ast.For) -> None:
        self._loop(node, [node.target, node.iter], [*node.body, *node.orelse])

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self._loop(node, [node.test], [*node.body, *node.orelse])

    def visit_FunctionDef(self, node: ast.AST) -> None:
        outer, self._outer = self._outer, []  # a function's loops are not around the cell's
        self.generic_visit(node)
        self._outer = outer

    visit_AsyncFunctionDef = visit_FunctionDef


def _is_call_of(node: ast.AST, shape: _Shape) -> bool:
    return isinstance(node, ast.Call) and shape._is_ours(node.func, LOOPS)


def _iterated(node: ast.AST) -> str | None:
    """The name a ``for`` loop iterates (through ``enumerate``/``tqdm``), or the source of an
    inline ``DataLoader(...)``."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _WRAPPERS
        and node.args
    ):
        node = node.args[0]
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and _is_dataloader_call(node):
        return ast.unparse(node)
    return None


def _saves_in(body: list[ast.AST], name: str) -> bool:
    return any(
        isinstance(n, ast.Attribute)
        and n.attr == "save"
        and isinstance(n.value, ast.Name)
        and n.value.id == name
        for stmt in body
        for n in ast.walk(stmt)
    )


def _is_dataloader_call(node: ast.Call) -> bool:
    func = node.func
    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return called.endswith("DataLoader")


def _shuffle_keyword(node: ast.Call) -> bool:
    return any(
        k.arg == "shuffle" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )


def _bound_loaders(tree: ast.AST) -> dict[str, bool]:
    """Names the cell binds to a ``DataLoader(...)`` call -> whether it shuffles."""
    bound = {}
    for node in ast.walk(tree):
        call = getattr(node, "value", None)
        loader = isinstance(call, ast.Call) and _is_dataloader_call(call)
        if isinstance(node, ast.Assign) and loader:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = _shuffle_keyword(call)
    return bound


def _shuffled(
    text: str, bound: Mapping[str, bool], namespace: Mapping[str, Any], saved: Collection[str]
) -> bool:
    if text in bound:
        return bound[text]
    if text.endswith(")"):  # an inline DataLoader(...)
        return "shuffle=True" in text.replace(" ", "")
    loader = namespace.get(text)
    sampler = getattr(loader, "sampler", None)
    if sampler is None or "RandomSampler" not in {c.__name__ for c in type(sampler).__mro__}:
        return False
    # A loader that saves its own position, named in --save, resumes exactly as it is.
    return not (text in saved and callable(getattr(loader, "load_state_dict", None)))


def _rewrite(name: str, call: ast.Call, outer: ast.AST) -> str:
    kind = call.func.attr  # type: ignore[attr-defined]
    variable, epochs = "epoch", "E"
    if isinstance(outer, (ast.For, ast.AsyncFor)):
        if isinstance(outer.target, ast.Name):
            variable = outer.target.id
        it = outer.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "range"
            and len(it.args) == 1
        ):
            epochs = ast.unparse(it.args[0])
    loader = ast.unparse(call.args[0]) if kind == "batches" and call.args else "loader"
    return (
        f"a loop around {name}.{kind}() would start it again each time round, and a cell "
        f"has one checkpointed loop: put the epochs into it, as "
        f"for {variable}, batch in {name}.batches({loader}, epochs={epochs}):"
    )
