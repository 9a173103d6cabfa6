"""Reading demo.ipynb and writing it back with outputs, as plain nbformat-4 JSON."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    if notebook.get("nbformat") != 4:
        raise ValueError(f"{path}: not an nbformat 4 notebook")
    return notebook


def source(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def with_outputs(
    notebook: dict[str, Any],
    results: list[tuple[list[dict[str, Any]], int | None]],
    widget_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of ``notebook`` whose code cells carry ``results`` (outputs, execution count)."""
    executed = copy.deepcopy(notebook)
    for cell, (outputs, count) in zip(code_cells(executed), results, strict=False):
        cell["outputs"] = outputs
        cell["execution_count"] = count
    if widget_state:
        # Lets a notebook viewer draw the panels as they ended, without a kernel.
        executed["metadata"].setdefault("widgets", {})[WIDGET_STATE] = widget_state
    return executed


def save(notebook: dict[str, Any], path: str | os.PathLike[str]) -> None:
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(notebook, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(partial, target)


def outputs_of(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """Every output of every code cell, in order."""
    return [output for cell in code_cells(notebook) for output in cell.get("outputs", [])]


def output_text(output: dict[str, Any]) -> str:
    """The text a reader sees for one output (stream text, plain-text data, or the error)."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
    elif kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text
