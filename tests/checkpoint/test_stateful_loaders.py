"""Loaders that save their own position (``state_dict()``/``load_state_dict()``): passed to
``ckpt.batches`` or named in ``--save``, a mid-epoch resume ends bit-identical to an unbroken
run, Dropout included.

torchdata's ``StatefulDataLoader.__iter__`` builds its iterator from the loaded state, and that
draws the workers' base seed from torch's global generator (``_BaseDataLoaderIter.__init__``);
its ``state_dict()`` builds one too when it has none
(torchdata/stateful_dataloader/stateful_dataloader.py).
"""

from __future__ import annotations

import random

import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from tests.checkpoint.test_batches import SAMPLES, Counting, _setup, _train, _weights

StatefulDataLoader = pytest.importorskip("torchdata.stateful_dataloader").StatefulDataLoader


class Replayable:
    """The contract alone: an iterable of batches whose every ``iter()`` draws from torch's
    global generator (as a loader drawing its workers' base seed does) and whose position is
    its state."""

    def __init__(self, batches: list) -> None:
        self.batches = batches
        self.position = 0
        self.order: list[int] = []

    def __iter__(self):
        seed = int(torch.empty((), dtype=torch.int64).random_().item())  # drawn in iter() itself
        if self.position == 0 or self.position >= len(self.batches):
            shuffle = torch.Generator().manual_seed(seed)
            self.order = torch.randperm(len(self.batches), generator=shuffle).tolist()
            self.position = 0
        return self._rest()

    def _rest(self):
        while self.position < len(self.batches):
            self.position += 1
            yield self.batches[self.order[self.position - 1]]

    def __len__(self) -> int:
        return len(self.batches)

    def state_dict(self) -> dict:
        return {"position": self.position, "order": list(self.order)}

    def load_state_dict(self, state: dict) -> None:
        self.position, self.order = state["position"], list(state["order"])


def _stateful(workers: int):
    def setup() -> dict:
        ns = _setup()
        ns["loader"] = StatefulDataLoader(
            ns["data"], batch_size=6, shuffle=True, num_workers=workers
        )
        return ns

    return setup


def _replayable() -> dict:
    ns = _setup()
    data = ns["data"]
    ns["loader"] = Replayable(
        [(data.x[i : i + 5], data.y[i : i + 5], torch.arange(i, i + 5)) for i in range(0, 40, 5)]
    )
    return ns


def _cut_and_resume(client, setup, stop_at, train):
    reference = setup()
    train(client, reference, "ref")
    cut = setup()
    with pytest.raises(KeyboardInterrupt):
        train(client, cut, "cut", stop_at=stop_at)
    resumed = setup()
    torch.manual_seed(999)
    random.seed(3)
    train(client, resumed, "cut")
    return reference, resumed


@pytest.mark.parametrize(
    "setup", [_stateful(0), _stateful(2), _replayable], ids=["torchdata", "workers", "own"]
)
def test_passed_to_batches(client, setup):
    reference, resumed = _cut_and_resume(client, setup, 10, _train)
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]


def _train_by_step(client, ns, run, *, stop_at=None, steps=25):
    """The loader named in --save, iterated by hand inside ``ckpt.range``: one batch a step."""
    store = DriveCheckpointStore(client, f"colab_magics/checkpoints/{run}", run=run)
    save = ["model", "opt", "seen", "loader"]
    with checkpointed(run, save=save, namespace=ns, every="1", store=store) as ckpt:
        batches = iter(ns["loader"])
        for step in ckpt.range(steps):
            if step == stop_at:
                raise KeyboardInterrupt
            try:
                x, y, index = next(batches)
            except StopIteration:
                batches = iter(ns["loader"])
                x, y, index = next(batches)
            loss = (ns["model"](x) - y).pow(2).mean()
            ns["opt"].zero_grad()
            loss.backward()
            ns["opt"].step()
            ns["seen"].append(index.tolist())


def test_named_in_save(client):
    setup = _stateful(0)
    reference, resumed = _cut_and_resume(client, setup, 10, _train_by_step)
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]
    assert sorted(
        i for batch in reference["seen"][: len(reference["loader"])] for i in batch
    ) == list(range(SAMPLES))


def test_the_dataset_is_not_reloaded_on_resume(client):
    setup = _stateful(0)
    _, resumed = _cut_and_resume(client, setup, 10, _train)
    assert resumed["data"].loads < 3 * SAMPLES
    assert isinstance(resumed["data"], Counting)
