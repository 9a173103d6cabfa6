"""The shape of a checkpointed cell, checked before its first line runs."""

from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError
from torch.utils.data import DataLoader

from colab_magics.checkpoint.cellshape import CellShapeError, check_cell

EPOCH_LOOP = """
for epoch in range(EPOCHS):
    for batch in ckpt.batches(train_loader):
        step(batch)
"""


def test_an_epoch_loop_around_batches_shows_the_rewrite():
    with pytest.raises(CellShapeError) as caught:
        check_cell(EPOCH_LOOP)
    assert "for epoch, batch in ckpt.batches(train_loader, epochs=EPOCHS):" in str(caught.value)


@pytest.mark.parametrize(
    "cell",
    [
        "for e in range(3):\n    for s in ckpt.range(100):\n        pass\n",
        "while True:\n    for s in ckpt.range(100):\n        pass\n",
        "for lr in (0.1, 0.01):\n    for e, b in ckpt.batches(loader, epochs=2):\n        pass\n",
    ],
)
def test_any_loop_around_the_checkpointed_loop_is_refused(cell):
    with pytest.raises(CellShapeError, match=r"for \w+, batch in ckpt\.batches\(loader, epochs="):
        check_cell(cell)


@pytest.mark.parametrize(
    "cell",
    [
        "for epoch, batch in ckpt.batches(loader, epochs=3):\n    pass\n",
        "for step in ckpt.range(10):\n    for micro in range(4):\n        pass\n",
        "def train():\n    for s in ckpt.range(3):\n        pass\nfor _ in range(1):\n    pass\n"
        "train()\n",
        "for i in range(3):\n    pass\nckpt.save()\n",
    ],
)
def test_natural_shapes_pass_quietly(cell):
    assert check_cell(cell, namespace={"loader": [1, 2]}) == []


def test_two_loops_are_refused():
    with pytest.raises(CellShapeError, match="more than one ckpt.range"):
        check_cell("for a in ckpt.range(3): pass\nfor e, b in ckpt.batches(x): pass\n")


def test_a_cell_that_checkpoints_nothing_is_warned_about():
    (warning,) = check_cell("for step in range(100):\n    train(step)\n")
    assert "never calls ckpt.range, ckpt.batches or ckpt.save" in warning
    assert check_cell("for step in trainer.range(3): pass\n", "trainer") == []
    assert check_cell("x = 1\n", "trainer") != []
    assert check_cell("trainer.train()\n", folder=True) == []  # --dir: the trainer's own


def _loader(shuffle: bool):
    return DataLoader(torch.arange(10), batch_size=2, shuffle=shuffle)


def test_a_shuffled_loader_iterated_directly_is_warned_about():
    cell = "for batch in loader:\n    step(batch)\n    ckpt.save()\n"
    (warning,) = check_cell(cell, namespace={"loader": _loader(True)})
    assert "shuffled DataLoader" in warning and "ckpt.batches(loader, epochs=E)" in warning
    assert check_cell(cell, namespace={"loader": _loader(False)}) == []
    inline = "train = DataLoader(data, batch_size=8, shuffle=True)\nfor i, b in enumerate(train):"
    assert any("train is a shuffled" in w for w in check_cell(inline + "\n    ckpt.save()\n"))


def test_a_shuffled_loader_per_epoch_of_a_range_loop_resumes_at_epoch_ends():
    """Checkpoints at the ends of epochs only: the next epoch's order is drawn from the
    generators the checkpoint restores, so nothing is warned about."""
    cell = "for epoch in ckpt.range(3):\n    for batch in loader:\n        step(batch)\n"
    assert check_cell(cell, namespace={"loader": _loader(True)}) == []
    saving = cell + "        ckpt.save()\n"
    assert check_cell(saving, namespace={"loader": _loader(True)}) != []


def test_a_shuffled_loader_read_after_the_training_loop_is_not_warned_about():
    cell = (
        "for epoch, batch in ckpt.batches(loader, epochs=2):\n    step(batch)\n"
        "for batch in loader:\n    evaluate(batch)\n"
    )
    assert check_cell(cell, namespace={"loader": _loader(True)}) == []
    training = "for batch in loader:\n    step(batch)\n"
    assert any("shuffled" in w for w in check_cell(training, namespace={"loader": _loader(True)}))


def test_the_magic_refuses_before_the_first_line(shell):
    shell.user_ns.pop("ran", None)
    result = shell.run_cell("%%checkpointed run --save model\nran = True\n" + EPOCH_LOOP)
    assert isinstance(result.error_in_exec, UsageError)
    assert "epochs=EPOCHS" in str(result.error_in_exec)
    assert "ran" not in shell.user_ns


def test_the_magic_warns_before_anything_runs(shell, capsys):
    shell.user_ns["loader"] = _loader(True)
    shell.user_ns.pop("undefined_model", None)
    result = shell.run_cell(
        "%%checkpointed run --save undefined_model\nfor batch in loader:\n    pass\n"
    )
    assert isinstance(result.error_in_exec, UsageError)  # refused: nothing ran
    err = capsys.readouterr().err
    assert "Warning: this cell never calls ckpt.range" in err
    assert "Warning: loader is a shuffled DataLoader" in err
