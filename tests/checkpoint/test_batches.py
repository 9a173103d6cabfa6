"""``ckpt.batches``: a run interrupted mid-epoch and resumed in a fresh namespace ends with the
weights of an unbroken run, bit for bit (shuffling, Dropout, a per-epoch scheduler), and the
batches done before the interruption are skipped by their indices, never loaded.

The draws an iteration makes are torch's own: ``_BaseDataLoaderIter.__init__`` draws the
workers' base seed from ``loader.generator`` (torch's global generator when None) and
``RandomSampler.__iter__`` draws its seed the same way (torch/utils/data/dataloader.py,
sampler.py).
"""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.checkpoint.session import CheckpointUsageError

SAMPLES, FEATURES, EPOCHS = 40, 8, 3


class Counting(Dataset):
    """A map-style dataset that counts the samples it loads."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(7)
        self.x = torch.randn(SAMPLES, FEATURES, generator=gen)
        self.y = torch.randn(SAMPLES, 1, generator=gen)
        self.loads = 0

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int):
        self.loads += 1
        return self.x[index], self.y[index], index


def _setup(**loader_options) -> dict:
    """What a notebook's earlier cells define (run again in every fresh runtime)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    options = {"batch_size": 6, "shuffle": True, **loader_options}
    data = Counting()
    return {"model": model, "opt": opt, "sched": sched, "data": data, "seen": [],
            "loader": DataLoader(data, **options)}  # fmt: skip


def _train(client, ns, run, *, stop_at=None, epochs=EPOCHS, save="model,opt,sched,seen"):
    store = DriveCheckpointStore(client, f"colab_magics/checkpoints/{run}", run=run)
    with checkpointed(run, save=save.split(","), namespace=ns, every="1", store=store) as ckpt:
        for epoch, (x, y, index) in ckpt.batches(ns["loader"], epochs=epochs):
            if ckpt.step == stop_at:
                raise KeyboardInterrupt
            loss = (ns["model"](x) - y).pow(2).mean()
            ns["opt"].zero_grad()
            loss.backward()
            ns["opt"].step()
            ns["seen"].append((epoch, index.tolist()))
            if ckpt.epoch_done:
                ns["sched"].step()
    return ckpt


def _weights(ns) -> list[bytes]:
    return [t.numpy().tobytes() for t in ns["model"].state_dict().values()]


def _interrupted_then_resumed(client, stop_at, options=dict):
    """The unbroken run's namespace, and the resumed run's, after a KeyboardInterrupt at step
    ``stop_at`` and a fresh namespace whose global generators are scrambled. ``options()``
    gives the loader's options (new objects for each runtime)."""
    reference = _setup(**options())
    _train(client, reference, "ref")
    cut = _setup(**options())
    with pytest.raises(KeyboardInterrupt):
        _train(client, cut, "cut", stop_at=stop_at)
    resumed = _setup(**options())
    torch.manual_seed(12345)  # a fresh runtime's generators are not where the run left them
    random.seed(9)
    ckpt = _train(client, resumed, "cut")
    assert ckpt.restored_from.step == stop_at
    return reference, resumed


def test_mid_epoch_resume_is_bit_identical_and_loads_no_skipped_batch(client):
    length = -(-SAMPLES // 6)
    stop_at = length + 3  # the middle of the second epoch
    reference, resumed = _interrupted_then_resumed(client, stop_at)
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]  # the same order: nothing repeated, none lost
    assert resumed["sched"].last_epoch == EPOCHS
    done_batches = stop_at * 6 - (length * 6 - SAMPLES)  # epoch 1's last batch is short
    assert resumed["data"].loads == EPOCHS * SAMPLES - done_batches


def test_each_epoch_has_its_own_order(client):
    ns = _setup()
    _train(client, ns, "orders")
    orders = {}
    for epoch, indices in ns["seen"]:
        orders.setdefault(epoch, []).extend(indices)
    assert all(sorted(order) == list(range(SAMPLES)) for order in orders.values())
    assert orders[0] != orders[1] != orders[2]
    assert ns["loader"].sampler.generator is None  # the loader is left as it was


def test_drop_last(client):
    reference, resumed = _interrupted_then_resumed(client, 8, lambda: {"drop_last": True})
    assert _weights(resumed) == _weights(reference)
    assert len(reference["seen"]) == EPOCHS * (SAMPLES // 6)


@pytest.mark.parametrize(
    ("stop_at", "options"),
    [(9, {"num_workers": 2}), (7, {"num_workers": 2, "persistent_workers": True})],
    ids=["mid-epoch", "persistent-at-epoch-end"],
)
def test_workers(client, stop_at, options):
    reference, resumed = _interrupted_then_resumed(client, stop_at, lambda: dict(options))
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]


def test_a_user_generator_is_respected(client):
    reference, resumed = _interrupted_then_resumed(
        client, 10, lambda: {"generator": torch.Generator().manual_seed(3)}
    )
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]
    other = _setup(generator=torch.Generator().manual_seed(4))
    _train(client, other, "other")
    assert other["seen"] != reference["seen"]  # the user's generator decides the order


def test_a_user_sampler_drawing_in_chunks_is_replayed(client):
    """RandomSampler with replacement draws from its generator 32 indices at a time, as the
    iteration goes (torch/utils/data/sampler.py): the skip replays those draws."""

    def options():
        gen = torch.Generator().manual_seed(5)
        sampler = RandomSampler(range(SAMPLES), replacement=True, num_samples=50, generator=gen)
        return {"shuffle": False, "sampler": sampler}

    reference, resumed = _interrupted_then_resumed(client, 13, options)
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]


def test_a_list_of_batches_and_one_loop_per_cell(client):
    ns = _setup()
    ns["loader"] = [(torch.ones(2, FEATURES), torch.zeros(2, 1), torch.tensor([0, 1]))] * 3
    ckpt = _train(client, ns, "list", epochs=2)
    assert ckpt.step == 6
    store = DriveCheckpointStore(client, "colab_magics/checkpoints/twice", run="twice")
    with (
        pytest.raises(CheckpointUsageError, match="for epoch, batch in ckpt.batches"),
        checkpointed("twice", save=["model"], namespace=ns, store=store) as ckpt,
    ):
        for _epoch in range(2):
            for _ in ckpt.batches(ns["loader"]):
                pass


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_epochs_is_one_line(client, bad):
    ns = _setup()
    store = DriveCheckpointStore(client, "colab_magics/checkpoints/bad", run="bad")
    with (
        pytest.raises(CheckpointUsageError, match="epochs must be a whole number"),
        checkpointed("bad", save=["model"], namespace=ns, store=store) as ckpt,
    ):
        next(ckpt.batches(ns["loader"], epochs=bad))


@pytest.mark.parametrize(
    "bad",
    [
        {"epoch": -1, "offset": 0, "seed": 0},
        {"epoch": 0, "offset": "3", "seed": 0},
        {"epoch": 0, "offset": 3, "seed": 0, "generators": ["AAAA"]},
        {"epoch": 0, "offset": 3, "seed": 0, "epoch_rng": {"python": 1}},
        {"epoch": 0, "offset": 3, "seed": 0, "loader": {"__tensor__": {"dtype": "object"}}},
        "epoch 3",
    ],
)
def test_a_loop_position_that_cannot_be_resumed_is_refused_when_read(tmp_path, bad):
    """A checkpoint whose saved position is unusable fails its integrity check (the store
    then restores the one before), before anything is put back."""
    from colab_magics.checkpoint.formats import IntegrityError, read_snapshot, write_snapshot
    from colab_magics.checkpoint.rng import capture_rng

    blobs = write_snapshot([], {**capture_rng(), "batches": bad}, str(tmp_path))
    with pytest.raises(IntegrityError, match="random generators' state is not usable"):
        read_snapshot(str(tmp_path), {b.name: b.md5 for b in blobs}, {})


class Streamed(torch.utils.data.IterableDataset):
    """An iterable dataset: no indices to skip by."""

    def __init__(self) -> None:
        self.data = Counting()

    def __iter__(self):
        return (self.data[i] for i in range(SAMPLES))


def test_an_iterable_dataset_resumes_by_loading_what_it_skips(client):
    """Without indices the done batches are loaded and dropped: exact still, and said so."""

    def setup():
        ns = _setup()
        ns["data"] = Streamed()
        ns["loader"] = DataLoader(ns["data"], batch_size=6)
        return ns

    reference = setup()
    _train(client, reference, "ref")
    cut = setup()
    with pytest.raises(KeyboardInterrupt):
        _train(client, cut, "cut", stop_at=10)
    resumed = setup()
    torch.manual_seed(4)
    ckpt = _train(client, resumed, "cut")
    assert _weights(resumed) == _weights(reference)
    assert resumed["seen"] == reference["seen"]
    assert resumed["data"].data.loads == 2 * SAMPLES  # epoch 1 all loaded, its 3 done batches too
    assert "loading and dropping 3 batches" in ckpt.progress.get("message")
