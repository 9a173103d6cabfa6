"""Training slowdown from checkpointing every 60 s, vs the same steps without checkpoints.

One checkpointed run alternates one-minute blocks of training: a plain block (nothing being
persisted), then a checkpoint block (a snapshot at its start, whose persist of serialization,
md5 and upload competes with training for the CPU, as on Colab), and so on. Each checkpoint
block is compared with the mean of the plain blocks either side of it, so the slow drift of a
shared machine cancels; the figure is the median over blocks. All steps run through
``ckpt.range``, so the loop wrapper's own cost (reported separately) is in both kinds of block.

The emulator stands in for Google's servers, so it runs only on CPU time nothing else wants
(SCHED_IDLE): its CPU is not the client's cost. The persister thread's own CPU time per
checkpoint is reported too, a figure that a machine's noise does not move.

``--threads 1`` leaves one of two cores to everything but training, as training on a GPU does
(the CPU mostly waits for the device); the default uses every core, the worst case.

``--cadence S`` measures instead how far the confirmed checkpoint falls behind when training
never pauses: one run checkpointing every S seconds for ``--intervals`` intervals. At every
step the confirmed checkpoint's age (now minus the time its snapshot was taken) is sampled;
the goal is a worst age of at most 1.5 x the cadence. The persist's CPU time (its thread and
the normal-priority worker its late pieces run on) is reported per checkpoint.

    python bench/checkpoint_overhead.py [--blocks 10] [--block-seconds 60] [--params-m 20]
                                        [--threads N]
    python bench/checkpoint_overhead.py --cadence 60 --intervals 8 [--threads N] [--busy N]

``--busy N`` adds N processes that spin at normal priority for the whole run (data-loader
workers, or the rest of a shared machine): the CPU a nice-10 persist could live on is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
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


def median_step_seconds(model, opt, steps: int) -> float:
    times, last = [], time.perf_counter()
    for _ in range(steps):
        train_step(model, opt)
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return statistics.median(times)


def thread_cpu_seconds(native_id: int) -> float:
    """CPU time (user + system) of one thread of this process, from /proc."""
    with open(f"/proc/self/task/{native_id}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy_processes(count: int):
    """``count`` processes spinning at normal priority until the block ends."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def late_cpu(persister) -> float:
    """CPU time of the persister's normal-priority worker (the upload, late pieces)."""
    worker = getattr(persister, "worker", None)  # None: a persister without one
    return thread_cpu_seconds(worker.native_id) if worker is not None else 0.0


def alternating_blocks(client, model, opt, steps_per_block: int, blocks: int) -> dict:
    """Seconds of each plain and checkpoint block, and what each persist cost its thread."""
    namespace = {"model": model, "opt": opt}
    store = DriveCheckpointStore(client, "bench/overhead", run="overhead")
    kinds = ["plain", "checkpoint"] * blocks + ["plain"]
    seconds: dict[str, list[float]] = {"plain": [], "checkpoint": []}
    persist_cpu, persist_wall, unfinished = [], [], 0
    with checkpointed("overhead", save=["model", "opt"], namespace=namespace, every="24h",
                      keep=2, store=store, fresh=True) as ckpt:  # fmt: skip
        persister = ckpt._persister
        ckpt.wait()  # the run's lease and folder are set up before timing starts
        loop = ckpt.range((len(kinds) + 1) * steps_per_block)
        for _, _ in zip(range(steps_per_block), loop, strict=False):
            train_step(model, opt)  # untimed: the first block after setup runs slow
        for kind in kinds:
            cpu_before = thread_cpu_seconds(persister._thread.native_id)
            late_before = late_cpu(persister)
            started = time.perf_counter()
            for i, _ in zip(range(steps_per_block), loop, strict=False):
                train_step(model, opt)
                if kind == "checkpoint" and i == 0:
                    ckpt.save()  # the snapshot is taken as this step ends, inside the block
            seconds[kind].append(time.perf_counter() - started)
            if kind == "checkpoint":
                unfinished += persister.busy()
                ckpt.wait()  # untimed: the next plain block starts with nothing in flight
                persist_cpu.append(thread_cpu_seconds(persister._thread.native_id) - cpu_before)
                persist_cpu[-1] += late_cpu(persister) - late_before
                persist_wall.append(persister.last_seconds)
        for _ in loop:  # drain the generator so the block ends through ckpt.range
            pass
    return {
        **seconds,
        "persist_cpu": persist_cpu,
        "persist_wall": persist_wall,
        "unfinished": unfinished,
    }


def confirmed_ages(client, model, opt, cadence: float, intervals: int) -> dict:
    """Train without pause, checkpointing every ``cadence`` s; sample the confirmed age."""
    namespace = {"model": model, "opt": opt}
    store = DriveCheckpointStore(client, "bench/cadence", run="cadence")
    ages, confirms, late_pieces = [], [], 0
    with checkpointed("cadence", save=["model", "opt"], namespace=namespace,
                      every=f"{cadence:g}s", keep=2, store=store, fresh=True) as ckpt:  # fmt: skip
        persister = ckpt._persister
        phases = timed_phases(persister)
        ckpt.wait()
        cpu_before = thread_cpu_seconds(persister._thread.native_id) + late_cpu(persister)
        started = time.time()
        seen = None
        steps = 0
        print(f"# training for {cadence * (intervals + 0.5):.0f} s", flush=True)
        for _ in ckpt.range(10**9):
            train_step(model, opt)
            steps += 1
            now = time.time()
            result = persister.last_result
            if result is not None and result.step > 0:
                if seen is None or result.step != seen.step:
                    confirms.append((now - started, now - result.created, result.step))
                    seen = result
                ages.append(now - seen.created)
            if now - started > cadence * (intervals + 0.5):
                break
        elapsed = time.time() - started
        cpu = thread_cpu_seconds(persister._thread.native_id) + late_cpu(persister) - cpu_before
        late_pieces = getattr(persister, "late_pieces", 0)
        replaced = persister.replaced
    return {"ages": ages, "confirms": confirms, "phases": phases, "cpu": cpu, "elapsed": elapsed,
            "steps": steps, "late_pieces": late_pieces, "replaced": replaced}  # fmt: skip


def timed_phases(persister) -> list[tuple[str, float]]:
    """Record how long each persist's stage (serialize + md5) and upload take."""
    phases: list[tuple[str, float]] = []
    for name in ("_stage", "_upload"):
        inner = getattr(persister, name)

        def wrapped(arg, inner=inner, name=name):
            started = time.perf_counter()
            try:
                return inner(arg)
            finally:
                phases.append((name[1:], time.perf_counter() - started))

        setattr(persister, name, wrapped)
    return phases


def cadence_report(args, result: dict, state_mb: float) -> None:
    ages, confirms = sorted(result["ages"]), result["confirms"]
    cadence = args.cadence
    pct = lambda q: ages[min(len(ages) - 1, int(q * len(ages)))]  # noqa: E731
    print(
        f"# {args.params_m}M parameters + Adam (~{state_mb:.0f} MB of state), checkpoint every "
        f"{cadence:g} s for {result['elapsed']:.0f} s of training without pause; torch threads "
        f"{torch.get_num_threads()}, emulator at "
        f"{'normal priority' if args.emulator_normal else 'SCHED_IDLE'}, persister at nice 10 "
        f"until late; {args.busy} busy processes; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print("confirmed at s | age of that snapshot when confirmed s | step")
    for at, age, step in confirms:
        print(f"{at:14.1f} | {age:36.1f} | {step}")
    print(
        f"confirmed age over {len(ages)} steps: median {pct(0.5):.1f} s, p95 {pct(0.95):.1f} s, "
        f"max {ages[-1]:.1f} s = {ages[-1] / cadence:.2f} x the cadence (goal <= 1.5); "
        f"{len(confirms)} checkpoints confirmed, {result['replaced']} replaced unpersisted, "
        f"{result['late_pieces']} pieces run late at normal priority"
    )
    for phase in ("stage", "upload"):
        took = sorted(t for n, t in result["phases"] if n == phase)
        if took:
            print(f"{phase}: {', '.join(f'{t:.1f}' for t in took)} s")
    per = result["cpu"] / max(1, len(confirms))
    print(
        f"persist CPU {result['cpu']:.2f} s in all, {per:.2f} s per checkpoint = "
        f"{100 * per / cadence:.2f} % of one core per {cadence:g} s interval "
        f"({100 * per / 60:.2f} % at a 60 s cadence); {result['steps']} training steps, "
        f"{result['elapsed'] / result['steps'] * 1000:.0f} ms a step"
    )


def wrapper_seconds_per_step(client, steps: int = 200_000) -> float:
    """What ``ckpt.range`` adds to each step, against a bare ``range``."""
    started = time.perf_counter()
    for _ in range(steps):
        pass
    bare = time.perf_counter() - started
    store = DriveCheckpointStore(client, "bench/wrapper", run="wrapper")
    with checkpointed("wrapper", save=["x"], namespace={"x": 0}, every="24h", store=store,
                      fresh=True) as ckpt:  # fmt: skip
        started = time.perf_counter()
        for _ in ckpt.range(steps):
            pass
        wrapped = time.perf_counter() - started
    return (wrapped - bare) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=10, help="checkpoint blocks")
    parser.add_argument("--block-seconds", type=float, default=60.0)
    parser.add_argument("--params-m", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--cadence", type=float, default=0, help="seconds; see the docstring")
    parser.add_argument("--intervals", type=int, default=8)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes; see above")
    parser.add_argument(
        "--emulator-normal", action="store_true",
        help="run the emulator at normal priority, not SCHED_IDLE (a machine with no idle CPU)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, opt = make_model(args.params_m)
    median_step_seconds(model, opt, 20)  # warm up allocator and kernels before the probe
    state_mb = sum(p.numel() * 3 * 4 for p in model.parameters()) / 1e6  # weights + Adam m, v
    if args.cadence:
        with (
            emulator_process(idle=not args.emulator_normal) as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
            client = connect(url=url, token=BENCH_TOKEN)
            with busy_processes(args.busy):
                result = confirmed_ages(client, model, opt, args.cadence, args.intervals)
            client.close()
        cadence_report(args, result, state_mb)
        return
    step = median_step_seconds(model, opt, 200)
    steps_per_block = max(10, int(args.block_seconds / step))
    with emulator_process(idle=True) as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        client = connect(url=url, token=BENCH_TOKEN)
        result = alternating_blocks(client, model, opt, steps_per_block, args.blocks)
        wrapper = wrapper_seconds_per_step(client)
        client.close()

    plain, ours = result["plain"], result["checkpoint"]
    slowdowns = [ours[i] / ((plain[i] + plain[i + 1]) / 2) - 1 for i in range(len(ours))]
    print(
        f"# {args.params_m}M parameters + Adam (~{state_mb:.0f} MB of state), {steps_per_block} "
        f"steps (~{args.block_seconds:.0f} s) a block, {len(ours)} checkpoint blocks between "
        f"{len(plain)} plain ones; torch threads {torch.get_num_threads()}, "
        f"emulator at SCHED_IDLE, persister at nice 10"
    )
    print("block | plain before s | checkpoint s | plain after s | slowdown | persist cpu/wall s")
    for i, slowdown in enumerate(slowdowns):
        print(
            f"{i:5} | {plain[i]:14.2f} | {ours[i]:12.2f} | {plain[i + 1]:13.2f} | "
            f"{100 * slowdown:+7.2f} % | {result['persist_cpu'][i]:.2f} / "
            f"{result['persist_wall'][i]:.1f}"
        )
    print(
        f"median slowdown {100 * statistics.median(slowdowns):+.2f} % "
        f"(mean {100 * statistics.mean(slowdowns):+.2f} %, plain blocks varied "
        f"{min(plain):.1f}-{max(plain):.1f} s); persist unfinished at a block's end: "
        f"{result['unfinished']}"
    )
    print(
        f"persister CPU per checkpoint: median {statistics.median(result['persist_cpu']):.2f} s "
        f"= {100 * statistics.median(result['persist_cpu']) / args.block_seconds:.2f} % of one "
        f"core for {args.block_seconds:.0f} s; loop wrapper {1e6 * wrapper:.1f} µs a step "
        f"= {100 * wrapper / step:.3f} % of a {1000 * step:.0f} ms step"
    )


if __name__ == "__main__":
    main()
