"""Training slowdown with a 60 s checkpoint cadence vs the same loop without checkpoints.

The same number of steps runs both ways, alternated, on the same model; the persist (serialize,
md5, upload) competes with training for the CPU, as it would on Colab. The emulator stands in
for Google's servers, so it runs at the lowest priority: its CPU is not the client's cost.

Two figures, because a shared machine's run-to-run noise can exceed a 1 % effect:
- end to end: median checkpointed run vs median plain run (alternated pairs);
- within the checkpointed runs: the time that steps overlapping a snapshot or a persist took
  beyond the run's median step, plus the per-step cost of the loop wrapper (median step vs the
  plain runs' median step), over the plain run's time. Noise outside those windows does not
  enter it.

    python bench/checkpoint_overhead.py [--seconds 200] [--every 60s] [--params-m 20] [--repeat 3]
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


def plain(model, opt, steps: int) -> list[float]:
    """Each step's seconds."""
    times = []
    last = time.perf_counter()
    for _ in range(steps):
        train_step(model, opt)
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def checkpointed_loop(client, model, opt, steps: int, every: str, run: str):
    """Each step's seconds (a snapshot counts in the step it follows), and whether a snapshot
    or a persist overlapped it."""
    namespace = {"model": model, "opt": opt}
    store = DriveCheckpointStore(client, f"bench/{run}", run=run)
    times, busy = [], []
    with checkpointed(run, save=["model", "opt"], namespace=namespace, every=every,
                      keep=2, store=store, fresh=True) as ckpt:  # fmt: skip
        persister = ckpt._persister
        last = time.perf_counter()
        for _ in ckpt.range(steps):
            was_busy = persister.busy()
            train_step(model, opt)
            busy.append(was_busy)
            now = time.perf_counter()
            times.append(now - last)
            last = now
    # A step whose end took a snapshot shows as busy at the next step's start.
    overlapped = [b or (i + 1 < len(busy) and busy[i + 1]) for i, b in enumerate(busy)]
    return times, overlapped


def within_run_slowdown(times, overlapped, plain_median: float) -> tuple[float, float]:
    """(overlap cost, wrapper cost) as fractions of the plain time of the same steps."""
    quiet = [t for t, o in zip(times, overlapped, strict=True) if not o]
    median = statistics.median(quiet)
    overlap_cost = sum(t - median for t, o in zip(times, overlapped, strict=True) if o)
    wrapper_cost = len(times) * (median - plain_median)
    base = len(times) * plain_median
    return overlap_cost / base, wrapper_cost / base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=200.0)
    parser.add_argument("--every", default="60s")
    parser.add_argument("--params-m", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model, opt = make_model(args.params_m)
    probe = 200
    plain(model, opt, 20)  # warm up allocator and kernels before timing the probe
    steps = max(probe, int(args.seconds / statistics.median(plain(model, opt, probe))))
    with emulator_process(nice=19) as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        client = connect(url=url, token=BENCH_TOKEN)
        rows = []
        for i in range(args.repeat):  # alternated, so the machine's drift hits both alike
            base = plain(model, opt, steps)
            times, overlapped = checkpointed_loop(client, model, opt, steps, args.every, f"o{i}")
            overlap, wrapper = within_run_slowdown(times, overlapped, statistics.median(base))
            rows.append((sum(base), sum(times), overlap, wrapper, sum(overlapped)))
        client.close()
    print(
        f"# {args.params_m}M parameters + Adam, {steps} steps a run, checkpoint every "
        f"{args.every}, {args.repeat} alternated pairs; emulator at nice 19, persister at nice 10"
    )
    print("pair | plain s | checkpointed s | end to end | in overlapping steps | wrapper | steps")
    for i, (base, ours, overlap, wrapper, n) in enumerate(rows):
        print(
            f"{i:4} | {base:7.1f} | {ours:14.1f} | {100 * (ours / base - 1):+9.2f} % | "
            f"{100 * overlap:+18.2f} % | {100 * wrapper:+6.2f} % | {n} overlapped"
        )
    base = statistics.median(r[0] for r in rows)
    ours = statistics.median(r[1] for r in rows)
    within = statistics.median(r[2] + r[3] for r in rows)
    print(
        f"median: end to end {100 * (ours / base - 1):+.2f} % | "
        f"within the checkpointed runs {100 * within:+.2f} %"
    )


if __name__ == "__main__":
    main()
