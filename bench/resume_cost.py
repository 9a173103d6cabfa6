"""Resume cost mid-epoch: time from cell start to the first trained batch after a kill in the
middle of an epoch of 10,000 batches, ``ckpt.batches`` (skips by index) vs ``islice`` over the
loader (the hand way, which loads and decodes every batch it skips).

Each sample is "decoded" from its index (a 3x32x32 image generated and normalised), a stand-in
for reading and decoding an image. Both runs resume from a checkpoint at batch 5,000 confirmed
on the same emulator process, through the same client.

    python bench/resume_cost.py [--batches 10000] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.drive import connect


class Decoded(Dataset):
    """Samples made from their index, at a decoding cost per sample."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.decode = True

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if not self.decode:
            return torch.zeros(3 * 32 * 32), index % 10
        pixels = np.random.default_rng(index).integers(0, 256, (3, 32, 32), dtype=np.uint8)
        image = (pixels.astype(np.float32) / 255.0 - 0.5) / 0.25
        return torch.from_numpy(image.reshape(-1)), index % 10


def _setup(batches: int, batch_size: int, generator=None) -> dict:
    torch.manual_seed(0)
    model = torch.nn.Linear(3 * 32 * 32, 10)
    data = Decoded(batches * batch_size)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
    return {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.01),
            "data": data, "loader": loader}  # fmt: skip


def _train(ns, x, y) -> None:
    loss = torch.nn.functional.cross_entropy(ns["model"](x), y)
    ns["opt"].zero_grad()
    loss.backward()
    ns["opt"].step()


def _store(client, run):
    return DriveCheckpointStore(client, f"bench/{run}", run=run)


def ours(client, batches: int, batch_size: int) -> float:
    """Seconds from cell start to the first trained batch of a resume at batch ``batches/2``."""
    half, run = batches // 2, "ours"
    ns = _setup(batches, batch_size)
    ns["data"].decode = False  # getting to the checkpoint is not what is measured
    with checkpointed(run, save=["model", "opt"], namespace=ns, every=str(half),
                      store=_store(client, run)) as ckpt:  # fmt: skip
        for _epoch, (x, y) in ckpt.batches(ns["loader"], epochs=1):
            if ckpt.step == half:
                break
            _train(ns, x, y)
    ns = _setup(batches, batch_size)
    started = time.perf_counter()
    with checkpointed(run, save=["model", "opt"], namespace=ns, every="1h",
                      store=_store(client, run)) as ckpt:  # fmt: skip
        assert ckpt.step == half, ckpt.step
        for _epoch, (x, y) in ckpt.batches(ns["loader"], epochs=1):
            _train(ns, x, y)
            seconds = time.perf_counter() - started
            break
    return seconds


def by_hand(client, batches: int, batch_size: int) -> float:
    """The same, the hand way: a generator seeded per epoch, ``islice`` past the done batches."""
    half, run = batches // 2, "hand"

    def loop(ns, ckpt):
        ns["loader"].generator.manual_seed(1000)  # epoch 0's seed
        rest = itertools.islice(ns["loader"], ckpt.step, None)
        return zip(ckpt.range(batches), rest, strict=True)

    ns = _setup(batches, batch_size, torch.Generator())
    ns["data"].decode = False
    with checkpointed(run, save=["model", "opt"], namespace=ns, every=str(half),
                      store=_store(client, run)) as ckpt:  # fmt: skip
        for step, (x, y) in loop(ns, ckpt):
            if step == half:
                break
            _train(ns, x, y)
    ns = _setup(batches, batch_size, torch.Generator())
    started = time.perf_counter()
    with checkpointed(run, save=["model", "opt"], namespace=ns, every="1h",
                      store=_store(client, run)) as ckpt:  # fmt: skip
        assert ckpt.step == half, ckpt.step
        for _step, (x, y) in loop(ns, ckpt):
            _train(ns, x, y)
            seconds = time.perf_counter() - started
            break
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with emulator_process() as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        client = connect(url=url, token=BENCH_TOKEN)
        fast = ours(client, args.batches, args.batch_size)
        slow = by_hand(client, args.batches, args.batch_size)
        client.close()
    print(f"epoch of {args.batches} batches of {args.batch_size}, resumed at batch "
          f"{args.batches // 2}: ckpt.batches {fast:.3f} s, islice {slow:.2f} s, "
          f"{slow / fast:.0f}x")  # fmt: skip


if __name__ == "__main__":
    main()
