"""How long a training loop stalls per checkpoint: ours vs the seed 004 way, same state.

The seed 004 way blocks the loop for ``torch.save`` and the upload. Ours blocks only while the
state is copied into reused host buffers; serializing and uploading run behind the loop.
Both upload to the same emulator process through the same client.

    python bench/checkpoint_stall.py [--gib 0.5 2] [--repeat 3]
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


def seed004_stall(client, model, opt, folder: str, tmp: str) -> float:
    """torch.save to local disk, then upload, inside the loop."""
    started = time.perf_counter()
    path = os.path.join(tmp, "model.pt")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
    client.upload(path, f"{folder}/model.pt", replace=False)
    return time.perf_counter() - started


def our_stalls(client, model, opt, run: str, count: int) -> tuple[list[float], float]:
    """Stall of each checkpoint taken in a checkpointed loop; also the final wait."""
    namespace = {"model": model, "opt": opt}
    store = DriveCheckpointStore(client, f"bench/{run}", run=run)
    stalls = []
    with checkpointed(run, save=["model", "opt"], namespace=namespace, every="1",
                      keep=2, store=store, fresh=True) as ckpt:  # fmt: skip
        steps = ckpt.range(count)
        next(steps)
        for _ in range(count - 1):
            started = time.perf_counter()
            next(steps)  # the step boundary: a snapshot is due every step
            stalls.append(time.perf_counter() - started)
        waited = time.perf_counter()
        ckpt.wait()
        waited = time.perf_counter() - waited
    return stalls, waited


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    with emulator_process() as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        client = connect(url=url, token=BENCH_TOKEN)
        print(f"# checkpoint stall, median of {args.repeat}, emulator on loopback")
        for gib in args.gib:
            model, opt = make_state(gib)
            size = state_bytes(model, opt)
            baseline = [
                seed004_stall(client, model, opt, f"bench/seed004-{gib}", tmp)
                for _ in range(args.repeat)
            ]
            ours, waited = our_stalls(client, model, opt, f"ours-{gib}".replace(".", "_"),
                                      args.repeat + 1)  # fmt: skip
            base, mine = statistics.median(baseline), statistics.median(ours)
            print(
                f"state {size / (1 << 30):.2f} GiB: seed004 (torch.save + upload) "
                f"{base:6.2f} s | ours {mine * 1000:7.1f} ms "
                f"(max {max(ours) * 1000:.1f} ms) | {base / mine:6.1f}x less stall | "
                f"persist behind the loop {waited:.1f} s"
            )
            del model, opt
        client.close()


if __name__ == "__main__":
    main()
