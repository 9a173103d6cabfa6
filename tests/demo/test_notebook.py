"""demo.ipynb as the repository keeps it: no outputs, no secrets, only magics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from colab_magics.demo import notebook as nb
from colab_magics.magics import ALL_MAGICS

NOTEBOOK = Path(__file__).resolve().parents[2] / "demo.ipynb"
MAGIC = re.compile(r"^\s*(%%?)(\w+)", re.M)


def _code() -> list[str]:
    return [nb.source(cell) for cell in nb.code_cells(nb.load(NOTEBOOK))]


def test_saved_without_outputs_or_execution_counts():
    document = nb.load(NOTEBOOK)
    for cell in nb.code_cells(document):
        assert cell["outputs"] == [], nb.source(cell)
        assert cell["execution_count"] is None, nb.source(cell)
    assert "widgets" not in document["metadata"]


def test_holds_no_token():
    text = NOTEBOOK.read_text(encoding="utf-8")
    assert "ya29." not in text  # Google OAuth access tokens
    assert "Bearer" not in text
    assert not re.search(r"--token(?!-file)\b", text)  # a token on a magic's line
    assert not re.search(r"TOKEN\s*=", text)
    # secrets.token_urlsafe(32), what the emulator generates, is 43 URL-safe characters.
    assert not re.search(r"[A-Za-z0-9_-]{40,}", text)
    json.loads(text)  # and it is valid JSON


def test_calls_only_magics_that_exist():
    known = {"load_ext"}
    for magics in ALL_MAGICS:
        for names in magics.magics.values():
            known.update(names)
    used = {name for code in _code() for _, name in MAGIC.findall(code)}
    assert used <= known, used - known
    assert {"drive_connect", "drive_sync", "checkpointed", "drive_quota"} <= used


def test_training_cell_saves_state_on_a_cadence_and_prints_progress():
    (training,) = [code for code in _code() if code.startswith("%%checkpointed")]
    first = training.splitlines()[0]
    assert "--save model,opt" in first and "--every" in first
    assert "ckpt.batches(loader, epochs=EPOCHS)" in training
    assert "if ckpt.epoch_done:\n        sched.step()" in training
    assert 'print(f"step {ckpt.step + 1}/{STEPS}' in training  # what the runner watches


def test_the_loader_shuffles_and_checkpoints_fall_inside_epochs():
    """The kill is at 60% of the steps and checkpoints every 25: no checkpoint step is an
    epoch's end, so the resume is always in the middle of an epoch."""
    setup = next(code for code in _code() if "DataLoader(" in code)
    assert "shuffle=True" in setup
    per_epoch = -(-8 * 1024 // 200)
    assert "batch_size=200" in setup and "EPOCHS = 8" in setup
    assert all(step % per_epoch for step in range(25, 8 * per_epoch, 25))
