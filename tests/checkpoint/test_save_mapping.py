"""``checkpointed(save={"name": obj})``: the objects given are what is captured and restored,
whatever the caller's globals hold under those names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.checkpoint.session import CheckpointUsageError

FOLDER = "colab_magics/checkpoints/m"
losses = ["a global of the same name as a saved object, but not that object"]


def _store(client):
    return DriveCheckpointStore(client, FOLDER, run="m")


def _train(client, model, history, table, scale, steps: int):
    save = {"weights": model, "losses": history, "table": table, "scale": scale}
    with checkpointed("m", save=save, every="100", store=_store(client)) as ckpt:
        for step in ckpt.range(steps):
            with torch.no_grad():
                model.weight += 1
            history.append(step)
            table[f"step{step}"] = step
            scale += 0.5
    return ckpt


def test_the_objects_given_are_captured_and_restored_in_place(client):
    assert "weights" not in globals()
    model, history, table, scale = torch.nn.Linear(3, 2), [], {}, np.ones(2)
    _train(client, model, history, table, scale, 3)
    trained = model.weight.detach().clone()

    fresh = torch.nn.Linear(3, 2), [], {"stale": 1}, np.zeros(2)
    ckpt = _train(client, *fresh, 3)
    assert ckpt.restored_from.step == 3
    assert torch.equal(fresh[0].weight, trained)
    assert fresh[1] == [0, 1, 2] and fresh[2] == {"step0": 0, "step1": 1, "step2": 2}
    assert np.array_equal(fresh[3], np.full(2, 2.5))
    assert losses == ["a global of the same name as a saved object, but not that object"]


def test_a_value_that_cannot_be_restored_in_place_is_refused(client):
    with (
        pytest.raises(CheckpointUsageError, match=r"save=\['lr'\]"),
        checkpointed("m", save={"lr": 0.1}, store=_store(client)),
    ):
        pytest.fail("the block ran")
