"""Training slowdown with a 60 s checkpoint cadence vs the same loop without checkpoints.

The same number of steps runs both ways, alternated, on the same model; the persist (serialize,
md5, upload to an emulator process) competes with training for the CPU, as it would on Colab.

    python bench/checkpoint_overhead.py [--seconds 150] [--every 60s] [--params-m 20] [--repeat 3]
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


def make_model(params_m: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    width = 1024
    layers = max(1, params_m * 1_000_000 // (width * width))
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    return model, torch.optim.Adam(model.parameters(), lr=1e-4)


def train_step(model, opt) -> None:
    x = torch.randn(32, 1024)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def plain(model, opt, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        train_step(model, opt)
    return time.perf_counter() - started


def checkpointed_loop(client, model, opt, steps: int, every: str, run: str) -> tuple[float, int]:
    namespace = {"model": model, "opt": opt}
    store = DriveCheckpointStore(client, f"bench/{run}", run=run)
    started = time.perf_counter()
    with checkpointed(run, save=["model", "opt"], namespace=namespace, every=every,
                      keep=2, store=store, fresh=True) as ckpt:  # fmt: skip
        for _ in ckpt.range(steps):
            train_step(model, opt)
        loop_seconds = time.perf_counter() - started
    confirmed = ckpt.progress.get("confirmed_step") or 0
    return loop_seconds, confirmed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--every", default="60s")
    parser.add_argument("--params-m", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model, opt = make_model(args.params_m)
    probe = 50
    plain(model, opt, 10)  # warm up allocator and kernels before timing the probe
    per_step = plain(model, opt, probe) / probe
    steps = max(probe, int(args.seconds / per_step))
    with emulator_process() as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        client = connect(url=url, token=BENCH_TOKEN)
        bases, ours, confirmed = [], [], 0
        for i in range(args.repeat):  # alternated, so the machine's drift hits both alike
            bases.append(plain(model, opt, steps))
            seconds, confirmed = checkpointed_loop(client, model, opt, steps, args.every, f"o{i}")
            ours.append(seconds)
        client.close()
    base, mine = statistics.median(bases), statistics.median(ours)
    print(
        f"# {args.params_m}M parameters + Adam, {steps} steps, checkpoint every {args.every}, "
        f"median of {args.repeat} alternated runs ({confirmed} steps confirmed in the last)"
    )
    print(
        f"no checkpoints {base:7.1f} s ({', '.join(f'{b:.1f}' for b in bases)}) | checkpointed "
        f"{mine:7.1f} s ({', '.join(f'{o:.1f}' for o in ours)}) | "
        f"slowdown {100 * (mine / base - 1):+.2f} %"
    )


if __name__ == "__main__":
    main()
