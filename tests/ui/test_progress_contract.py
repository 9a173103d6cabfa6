"""The progress contract (``colab_magics.progress``): fsspec-style callbacks, one set of field
names, a no-op default.

fsspec's ``Callback.set_size`` sets the total and ``branched()`` gives a child transfer its own
callback (https://filesystem-spec.readthedocs.io/en/latest/api.html#callbacks); ours do the same.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import colab_magics
from colab_magics.progress import (
    FIELDS,
    NO_PROGRESS,
    NO_SINK,
    Progress,
    TransferProgress,
)
from colab_magics.ui.display import status_parts


def _transfer(sink=NO_SINK, **kw):
    now = [0.0]
    return TransferProgress(sink, min_interval=0, clock=lambda: now[0], **kw), now


def test_set_size_sets_the_total():
    p, _ = _transfer()
    p.set_size(100)
    p.set_size(40)
    p.set_files(3)
    p.set_files(2)
    assert p.snapshot()["bytes_total"] == 40 and p.snapshot()["files_total"] == 2


def test_branches_add_their_sizes_to_the_parent():
    p, _ = _transfer()
    a, b = p.branched("a"), p.branched("b")
    a.set_size(100)
    b.set_size(50)
    a.set_size(70)  # a file whose size became known more exactly: set, not added
    a.relative_update(70)
    b.relative_update(10)
    b.file_done("b")
    snap = p.snapshot()
    assert snap["bytes_total"] == 120 and snap["bytes_done"] == 80 and snap["files_done"] == 1
    phase = p.branched()
    phase.set_files(4)
    phase.branched("x").set_size(5)  # a branch of a branch counts into the root
    assert p.snapshot()["files_total"] == 4 and p.snapshot()["bytes_total"] == 125


def test_eta_comes_with_the_rate():
    p, now = _transfer()
    p.set_size(1000)
    assert p.snapshot()["eta"] is None  # no rate yet
    now[0] = 2.0
    p.relative_update(400)
    snap = p.snapshot()
    assert snap["rate"] == pytest.approx(200.0) and snap["eta"] == pytest.approx(3.0)
    p.relative_update(600)
    assert p.snapshot()["eta"] is None  # nothing left


def test_forwarding_to_a_model_keeps_its_other_fields():
    model = Progress("ckpt", retries=2, error="earlier")
    p, now = _transfer(model, retries_before=2, only=("bytes_done", "bytes_total", "retries"))
    p.branched("w").set_size(10)
    p.retry(RuntimeError("x"), 0)
    now[0] = 1.0
    p.relative_update(10)
    fields = model.snapshot()
    assert fields["bytes_done"] == fields["bytes_total"] == 10 and fields["retries"] == 3
    assert fields["error"] == "earlier" and "files_total" not in fields


def test_the_defaults_do_nothing():
    branch = NO_PROGRESS.branched("x")
    branch.set_size(3)
    branch.relative_update(3)
    NO_SINK.update(state="done", bytes_done=3)
    assert NO_SINK.get("state") is None
    p = TransferProgress()  # no sink: counts only
    p.branched().set_size(3)
    assert p.snapshot()["bytes_total"] == 3


def test_the_ui_renders_what_the_transfer_forwards():
    model = Progress("push")
    p, now = _transfer(model)
    p.set_files(2)
    p.set_size(2000)
    now[0] = 1.0
    p.relative_update(1000)
    words = " · ".join(status_parts(model.snapshot()))
    assert "0/2 files" in words and "ETA 1s" in words


def _written_fields() -> dict[str, str]:
    """Keyword names passed to ``<progress-like>.update(...)`` or ``Progress(...)`` anywhere in
    the package."""
    sinks = {"progress", "sink", "model"}
    found: dict[str, str] = {}
    root = pathlib.Path(colab_magics.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Attribute):
                target = node.func.value
                name = getattr(target, "attr", getattr(target, "id", ""))
                writes = node.func.attr == "update" and name in sinks
            else:
                writes = getattr(node.func, "id", "") == "Progress"
            if writes:
                for kw in node.keywords:
                    if kw.arg is not None:
                        found.setdefault(kw.arg, f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_every_field_written_is_declared():
    written = _written_fields()
    assert {"state", "error", "message", "step"} <= set(written)  # the scan sees the writers
    undeclared = {k: v for k, v in written.items() if k not in FIELDS}
    assert not undeclared, f"fields not declared in colab_magics.progress.Fields: {undeclared}"
