"""How long a training loop stalls per checkpoint: ours vs the seed 004 way, same state.

The seed 004 way blocks the loop for ``torch.save`` and the upload. Ours blocks only while the
state is copied into reused host buffers; serializing and uploading run behind the loop.
Both upload to the same emulator process through the same client.

The floor for any snapshot is copying the same tensors into buffers allocated beforehand
(``copy bound``, measured in the same run, same torch threads); ours is reported as a ratio
to it, the first checkpoint of the run included (goal <= 1.1x). A checkpoint is due at every
step, so each one after the first finds the previous one persisting.

    python bench/checkpoint_stall.py [--gib 0.5 2] [--repeat 3] [--no-seed004]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.drive import connect


def make_state(gib: float) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A model plus Adam state of about ``gib`` GiB (parameters are a third of it)."""
    floats = int(gib * (1 << 30) / 4 / 3)
    width = 1024  # 4 MiB layers, so the state lands close to the size asked for
    model = torch.nn.Sequential(
        *[torch.nn.Linear(width, width, bias=False) for _ in range(max(1, floats // width**2))]
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # creates exp_avg and exp_avg_sq
    return model, opt


def state_bytes(model, opt) -> int:
    tensors = list(model.state_dict().values())
    for state in opt.state_dict()["state"].values():
        tensors += [v for v in state.values() if torch.is_tensor(v)]
    return sum(t.numel() * t.element_size() for t in tensors)


def state_tensors(model, opt) -> list[torch.Tensor]:
    tensors = list(model.state_dict().values())
    for state in opt.state_dict()["state"].values():
        tensors += [v for v in state.values() if torch.is_tensor(v)]
    return tensors


class CopyBound:
    """Copying the state's tensors into buffers allocated (and touched) beforehand."""

    def __init__(self, model, opt) -> None:
        self.sources = state_tensors(model, opt)
        self.buffers = [torch.empty_like(t) for t in self.sources]
        self()  # touches the buffers' pages

    def __call__(self) -> float:
        started = time.perf_counter()
        for buf, src in zip(self.buffers, self.sources, strict=True):
            buf.copy_(src)
        return time.perf_counter() - started


def seed004_stall(client, model, opt, folder: str, tmp: str) -> float:
    """torch.save to local disk, then upload, inside the loop."""
    started = time.perf_counter()
    path = os.path.join(tmp, "model.pt")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
    client.upload(path, f"{folder}/model.pt", replace=False)
    return time.perf_counter() - started


def paused(persister, fn):
    """``fn()`` with the persist paused between pieces, as it is during our own copy, so the
    bound meets the same competition from the persist as ours (none from its serializing; the
    upload, on the network, goes on)."""
    if not hasattr(persister, "_copying"):
        return fn()  # a persister that never pauses: both meet it running
    with persister._lock:
        persister._copying = True
    try:
        return fn()
    finally:
        with persister._lock:
            persister._copying = False
            persister._lock.notify_all()


def our_stalls(
    client, model, opt, run: str, count: int, bound: CopyBound
) -> tuple[list[float], list[float], float]:
    """Stall of each checkpoint taken in a checkpointed loop, the copy bound timed just before
    each (so both meet the same load on a shared machine); also the final wait."""
    namespace = {"model": model, "opt": opt}
    store = DriveCheckpointStore(client, f"bench/{run}", run=run)
    stalls, bounds = [], []
    with checkpointed(run, save=["model", "opt"], namespace=namespace, every="1",
                      keep=2, store=store, fresh=True) as ckpt:  # fmt: skip
        steps = ckpt.range(count)
        next(steps)
        persister = ckpt._persister
        for _ in range(count - 1):
            bounds.append(paused(persister, bound))
            started = time.perf_counter()
            next(steps)  # the step boundary: a snapshot is due every step
            stalls.append(time.perf_counter() - started)
        waited = time.perf_counter()
        ckpt.wait()
        waited = time.perf_counter() - waited
    return stalls, bounds, waited


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-seed004", action="store_true", help="skip the slow baseline")
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    with emulator_process() as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        client = connect(url=url, token=BENCH_TOKEN)
        print(
            f"# checkpoint stall, median of {args.repeat}, emulator on loopback, torch threads "
            f"{torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f} on "
            f"{os.cpu_count()} cores"
        )
        for gib in args.gib:
            model, opt = make_state(gib)
            size = state_bytes(model, opt)
            baseline = [
                seed004_stall(client, model, opt, f"bench/seed004-{gib}", tmp)
                for _ in range(0 if args.no_seed004 else args.repeat)
            ]
            ours, bounds, waited = our_stalls(
                client, model, opt, f"ours-{gib}".replace(".", "_"), args.repeat + 1,
                CopyBound(model, opt),
            )  # fmt: skip
            mine, bound = statistics.median(ours), statistics.median(bounds)
            ratios = [o / b for o, b in zip(ours, bounds, strict=True)]
            versus = ""
            if baseline:
                base = statistics.median(baseline)
                versus = f"seed004 (torch.save + upload) {base:6.2f} s, {base / mine:5.1f}x | "
            print(
                f"state {size / (1 << 30):.2f} GiB: {versus}copy bound {bound * 1000:6.1f} ms, "
                f"ours {mine * 1000:6.1f} ms (medians) | ours / the bound just before it: "
                f"median {statistics.median(ratios):.2f}x, first {ratios[0]:.2f}x, max "
                f"{max(ratios):.2f}x | persist behind the loop {waited:.1f} s | load "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
            del model, opt
        client.close()


if __name__ == "__main__":
    main()
