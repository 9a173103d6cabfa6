"""Fault soak: big checkpoints and a push/pull of many files, with faults off and on.

The emulator (in its own process) answers, per request and from a fixed seed: 10 % 5xx, 2 % 429
with Retry-After, 1 % connections cut mid-body, and up to 200 ms of jitter. Each part runs
twice in one run, faults off (the baseline) and with that mix:

- checkpoint: ``checkpointed()`` on a model + Adam + a NumPy array (``--state-mb`` in all),
  three checkpoints, keep 2; then a fresh process restores the newest and hashes the state;
- sync: ``push`` of ``--files`` files of varied sizes in a few folders (as ``%drive_sync
  push``), then ``pull`` into an empty folder; every file's md5 is compared with the source.

Printed: completed and verified, time without and with faults, retries our client made, faults
the emulator injected. ``--modes baseline,jitter,faults`` adds a run with the delays alone, to
tell their cost from the failures'. JSON goes to ``bench/out/fault_soak.json``.

    python bench/fault_soak.py [--state-mb 1024] [--files 10000] [--seed 4] [--jobs 8]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process, set_emulator

from colab_magics.drive import connect
from colab_magics.progress import DONE, Progress
from colab_magics.sync.local import file_md5

FAULTS = {
    "error_rate": 0.10,  # half 500, half 503
    "rate_limit_429": 0.02,
    "retry_after": 1.0,
    "cut_rate": 0.01,
    "jitter": 0.2,
}
NO_FAULTS = {name: 0.0 for name in FAULTS if name != "retry_after"}
MODES = {
    "baseline": NO_FAULTS,
    "jitter": {**NO_FAULTS, "jitter": FAULTS["jitter"]},  # the delays alone, no failures
    "faults": FAULTS,
}
INJECTED = ("error_500", "error_503", "rate_limit_429", "rate_limit_403", "cut_request",
            "cut_response")  # fmt: skip
CHECKPOINTS, KEEP = 3, 2
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "fault_soak.json")


# -- the emulator's control endpoint ----------------------------------------------------------


def control(url: str, method: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}_emulator/{path}", method=method, headers={"Authorization": f"Bearer {BENCH_TOKEN}"}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def injected(stats: dict[str, Any]) -> int:
    return int(sum(stats[k] for k in INJECTED))


def tally_retries(client: Any) -> Counter[str]:
    """Count the client's retries by cause, as its retrier notes them (every retry does)."""
    causes: Counter[str] = Counter()
    retrier = client.transport.retrier
    note = retrier.note_retry

    def noted(error: Any, delay: float, on_retry: Any) -> None:
        found = re.search(r"\b(\w+(?:Error|Read|Disconnected|Ready))\b", str(error))
        causes[f"HTTP {error.status}" if error.status else found[1] if found else "other"] += 1
        note(error, delay, on_retry)

    retrier.note_retry = noted
    return causes


# -- part 1: checkpoints ----------------------------------------------------------------------


def make_state(mb: float, seed: int, *, stepped: bool = True) -> dict[str, Any]:
    """Model + Adam (15/16 of ``mb``; parameters a third of that) and a NumPy array (1/16).

    ``stepped=False`` is what a fresh runtime builds before restoring: Adam without state.
    """
    import numpy as np
    import torch

    torch.manual_seed(seed)
    width = 512  # 1 MiB layers, so small states land close to the size asked for
    layers = max(1, int(mb * 15 / 16 / 3))
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width, bias=False) for _ in range(layers)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stats = np.random.default_rng(seed).random(max(1, int(mb * (1 << 20) / 16 / 8)))
    state = {"model": model, "opt": opt, "stats": stats, "epoch": 0}
    if stepped:
        train_step(state)
    return state


def train_step(state: dict[str, Any]) -> None:
    """Change every tensor and array of the state (an Adam step on a made-up gradient)."""
    for p in state["model"].parameters():
        if p.grad is None:
            p.grad = p.detach().clone()
        p.grad.mul_(0.5)
    state["opt"].step()
    state["stats"] += 1.0
    state["epoch"] += 1


def state_digest(state: dict[str, Any]) -> str:
    """md5 over every tensor, array and value of the state, in a fixed order."""
    import numpy as np
    import torch

    h = hashlib.md5()

    def feed(x: Any) -> None:
        if torch.is_tensor(x):
            h.update(x.detach().contiguous().numpy())
        elif isinstance(x, np.ndarray):
            h.update(np.ascontiguousarray(x))
        elif isinstance(x, dict):
            for k in sorted(x, key=repr):
                h.update(repr(k).encode())
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                feed(v)
        else:
            h.update(repr(x).encode())

    feed(state["model"].state_dict())
    feed(state["opt"].state_dict())
    feed(state["stats"])
    feed(state["epoch"])
    return h.hexdigest()


def run_folder(run: str) -> str:
    return f"soak/{run}"


def save_checkpoints(url: str, run: str, mb: float, seed: int) -> dict[str, Any]:
    """Three checkpoints in a ``checkpointed`` block; the state's digest at the last one."""
    from colab_magics.checkpoint.api import checkpointed
    from colab_magics.checkpoint.drive_store import DriveCheckpointStore

    state = make_state(mb, seed)
    client = connect(url=url, token=BENCH_TOKEN)
    causes = tally_retries(client)
    progress = Progress(run)
    confirmed: list[int] = []
    errors: list[str] = []

    def watch(p: Progress) -> None:
        step, error = p.get("confirmed_step"), p.get("error")
        if step is not None and step not in confirmed:
            confirmed.append(step)
        if error and error not in errors:
            errors.append(error)

    progress.subscribe(watch)
    store = DriveCheckpointStore(client, run_folder(run), run=run)
    started = time.perf_counter()
    with checkpointed(run, save=["model", "opt", "stats", "epoch"], namespace=state,
                      every="1", keep=KEEP, store=store, fresh=True,
                      progress=progress) as ckpt:  # fmt: skip
        for _ in ckpt.range(CHECKPOINTS):
            ckpt.wait()  # each checkpoint confirmed before the state moves on: none replaced
            train_step(state)
    seconds = time.perf_counter() - started
    names = sorted(f.name for f in client.listdir(run_folder(run)))
    result = {
        "seconds": seconds,
        "state_bytes": state_bytes(state),
        "digest": state_digest(state),
        "step": ckpt.step,
        "confirmed": confirmed,
        "done": progress.state == DONE,
        "errors": errors,
        "drive_manifests": [n for n in names if n.startswith("manifest-")],
        "drive_blob_folders": [n for n in names if n.startswith("step-")],
        "retries": client.retries,
        "retry_causes": dict(causes),
        "transfer_retries": progress.get("retries") or 0,
        "requests": client.requests,
    }
    client.close()
    return result


def state_bytes(state: dict[str, Any]) -> int:
    import torch

    tensors = list(state["model"].state_dict().values())
    for s in state["opt"].state_dict()["state"].values():
        tensors += [v for v in s.values() if torch.is_tensor(v)]
    return sum(t.numel() * t.element_size() for t in tensors) + state["stats"].nbytes


def restore_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: new objects (other values), restore the newest checkpoint, hash."""
    from colab_magics.checkpoint.api import checkpointed
    from colab_magics.checkpoint.drive_store import DriveCheckpointStore

    state = make_state(spec["mb"], spec["seed"] + 1, stepped=False)
    before = state_digest(state)
    client = connect(url=spec["url"], token=BENCH_TOKEN)
    causes = tally_retries(client)
    store = DriveCheckpointStore(client, run_folder(spec["run"]), run=spec["run"])
    progress = Progress(spec["run"])
    started = time.perf_counter()
    # Entering the block restores; with no steps left to run, leaving it saves nothing.
    with checkpointed(spec["run"], save=["model", "opt", "stats", "epoch"], namespace=state,
                      every="1", keep=KEEP, store=store, progress=progress) as ckpt:  # fmt: skip
        seconds = time.perf_counter() - started
        restored = ckpt.restored_from.step if ckpt.restored_from else None
    after = state_digest(state)
    client.close()
    return {
        "seconds": seconds,
        "restored_step": restored,
        "changed": after != before,
        "digest": after,
        "retries": client.retries,
        "retry_causes": dict(causes),
        "requests": client.requests,
        "peak_rss_mb": peak_rss_mb(),
    }


def restore_in_new_process(url: str, run: str, mb: float, seed: int) -> dict[str, Any]:
    spec = json.dumps({"url": url, "run": run, "mb": mb, "seed": seed})
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--restore-worker", spec],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {"failed": done.stderr[-4000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def checkpoint_part(url: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    run = f"soak-{mode}"
    control(url, "POST", "stats/reset")
    saved = save_checkpoints(url, run, args.state_mb, args.seed)
    gc.collect()  # the saving run's state and buffers go before the restore's arrive
    restored = restore_in_new_process(url, run, args.state_mb, args.seed)
    stats = control(url, "GET", "stats")
    ok_save = (
        saved["done"]
        and saved["confirmed"] == list(range(1, CHECKPOINTS + 1))
        and len(saved["drive_manifests"]) == KEEP
        and len(saved["drive_blob_folders"]) == KEEP
        and all(f"-{s:09d}-" in " ".join(saved["drive_manifests"]) for s in (2, 3))
    )
    verified = (
        restored.get("restored_step") == CHECKPOINTS
        and restored.get("changed")
        and restored.get("digest") == saved["digest"]
    )
    return {
        "part": "checkpoint",
        "mode": mode,
        "completed": bool(ok_save and "failed" not in restored),
        "verified": bool(verified),
        "seconds": saved["seconds"] + restored.get("seconds", math.nan),
        "save_seconds": saved["seconds"],
        "restore_seconds": restored.get("seconds"),
        "retries": saved["retries"] + restored.get("retries", 0),
        "retry_causes": dict(
            Counter(saved["retry_causes"]) + Counter(restored.get("retry_causes", {}))
        ),
        "requests": saved["requests"] + restored.get("requests", 0),
        "injected": injected(stats),
        "stats": stats,
        "save": saved,
        "restore": restored,
    }


# -- part 2: push and pull of many files ------------------------------------------------------

FOLDERS = ("images/train", "images/val", "labels", "meta", "")


def file_size(rng: random.Random, i: int, count: int) -> int:
    """Mostly small (64 B - 64 KiB), some up to 1 MiB, a few above the multipart limit and
    a few that take more than one resumable chunk."""
    if i < max(1, count // 1000):
        return rng.randint(20 << 20, 40 << 20)
    if i < max(2, count // 200):
        return rng.randint(5 << 20, 12 << 20)
    if rng.random() < 0.1:
        return int(math.exp(rng.uniform(math.log(64 << 10), math.log(1 << 20))))
    return int(math.exp(rng.uniform(math.log(64), math.log(64 << 10))))


def make_files(root: str, count: int, seed: int) -> dict[str, str]:
    """``count`` files of distinct content under ``root``; returns relative path -> md5."""
    rng = random.Random(seed)
    block = rng.randbytes(1 << 20)
    md5s = {}
    for i in range(count):
        folder = FOLDERS[i % len(FOLDERS)]
        rel = f"{folder}/f{i:06d}.bin" if folder else f"f{i:06d}.bin"
        size = file_size(rng, i, count)
        head = f"{rel}\n".encode()  # no two files alike: a mix-up cannot verify
        body = rng.randbytes(size) if size <= len(block) else _repeat(block, size, i)
        data = (head + body)[: max(size, len(head))]
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        md5s[rel] = hashlib.md5(data).hexdigest()
    return md5s


def _repeat(block: bytes, size: int, shift: int) -> bytes:
    rotated = block[shift % len(block) :] + block[: shift % len(block)]
    return (rotated * (size // len(rotated) + 1))[:size]


def tree_md5s(root: str) -> dict[str, str]:
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root).replace(os.sep, "/")] = file_md5(path)
    return out


def sync_part(url: str, mode: str, args: argparse.Namespace, src: str, md5s: dict[str, str],
              tmp: str) -> dict[str, Any]:  # fmt: skip
    from colab_magics.sync import pull, push

    control(url, "POST", "stats/reset")
    client = connect(url=url, token=BENCH_TOKEN)
    causes = tally_retries(client)
    drive_path = f"soak/files-{mode}"
    dest = os.path.join(tmp, f"pulled-{mode}")
    cache = os.path.join(tmp, f"cache-{mode}")  # md5 caches of their own: nothing carried over
    push_progress, pull_progress = Progress("push"), Progress("pull")
    started = time.perf_counter()
    pushed = push(src, drive_path, client=client, jobs=args.jobs, progress=push_progress,
                  cache_dir=os.path.join(cache, "push"))  # fmt: skip
    push_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pulled = pull(drive_path, dest, client=client, jobs=args.jobs, progress=pull_progress,
                  cache_dir=os.path.join(cache, "pull"))  # fmt: skip
    pull_seconds = time.perf_counter() - started
    stats = control(url, "GET", "stats")
    got = tree_md5s(dest)
    wrong = sorted(rel for rel in md5s if got.get(rel) != md5s[rel])
    extra = sorted(set(got) - set(md5s))
    moved = pushed.uploaded == len(md5s) and pulled.downloaded == len(md5s)
    result = {
        "part": "sync",
        "mode": mode,
        "completed": pushed.ok and pulled.ok and moved,
        "verified": not wrong and not extra and not pulled.duplicates,
        "seconds": push_seconds + pull_seconds,
        "push_seconds": push_seconds,
        "pull_seconds": pull_seconds,
        "retries": client.retries,
        "retry_causes": dict(causes),
        "transfer_retries": (push_progress.get("retries") or 0)
        + (pull_progress.get("retries") or 0),
        "requests": client.requests,
        "injected": injected(stats),
        "stats": stats,
        "files": len(md5s),
        "bytes": pushed.bytes,
        "push": pushed.summary(),
        "pull": pulled.summary(),
        "wrong": wrong[:20],
        "extra": extra[:20],
        "duplicates": len(pulled.duplicates),
    }
    client.close()
    return result


# -- the run ----------------------------------------------------------------------------------


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """A process's peak resident memory (``VmHWM``) in MiB; None where /proc cannot tell.

    Not ``getrusage``: a child's ``ru_maxrss`` starts from its parent's size at the fork.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def emulator_pid() -> int | None:
    """The pid of the emulator this process started (a child running colab_magics.emulator)."""
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                children = f.read().split()
        except OSError:
            continue
        for pid in children:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"colab_magics.emulator" in f.read():
                        return int(pid)
            except OSError:
                continue
    return None


def set_mode(url: str, mode: str, seed: int) -> None:
    # The seed restarts the dice: a mode meets the same faults in every run.
    set_emulator(url, **MODES[mode], seed=seed)


def summary(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"{'part':<11}{'mode':<10}{'completed':>10}{'verified':>9}{'seconds':>9}{'overhead':>9}"
        f"{'requests':>9}{'5xx':>6}{'429':>5}{'cuts':>5}{'retries':>8}",
    ]
    base = {r["part"]: r["seconds"] for r in results if r["mode"] == "baseline"}
    for r in results:
        s = r["stats"]
        over = r["seconds"] / base[r["part"]] if r["part"] in base else math.nan
        lines.append(
            f"{r['part']:<11}{r['mode']:<10}{'yes' if r['completed'] else 'NO':>10}"
            f"{'yes' if r['verified'] else 'NO':>9}{r['seconds']:>9.1f}{over:>8.2f}x"
            f"{r['requests']:>9}{s['error_500'] + s['error_503']:>6}{s['rate_limit_429']:>5}"
            f"{s['cut_request'] + s['cut_response']:>5}{r['retries']:>8}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-mb", type=float, default=1024, help="checkpointed state, MiB")
    parser.add_argument("--files", type=int, default=10_000, help="files to push and pull")
    parser.add_argument("--seed", type=int, default=4, help="seed of the fault dice and data")
    parser.add_argument("--jobs", type=int, default=8, help="parallel transfers (as --jobs)")
    parser.add_argument("--parts", default="checkpoint,sync", help="which parts to run")
    parser.add_argument(
        "--modes", default="baseline,faults", help="baseline, jitter (delays only), faults"
    )
    parser.add_argument("--out", default=OUT, help="JSON results file")
    parser.add_argument("--restore-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restore_worker:
        print(json.dumps(restore_worker(json.loads(args.restore_worker))))
        return 0
    # A kill (SIGTERM) unwinds like Ctrl-C: the emulator stops and the temporary data goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= set(MODES):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as tmp, emulator_process() as url:
        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        if "checkpoint" in parts:
            for mode in modes:
                set_mode(url, mode, args.seed)
                results.append(checkpoint_part(url, mode, args))
                print(_line(results[-1]), flush=True)
        if "sync" in parts:
            src = os.path.join(tmp, "src")
            md5s = make_files(src, args.files, args.seed)
            for mode in modes:
                set_mode(url, mode, args.seed)
                results.append(sync_part(url, mode, args, src, md5s, tmp))
                print(_line(results[-1]), flush=True)
        server = emulator_pid()
        emulator_rss = peak_rss_mb(server) if server else None
    report = {
        "state_mb": args.state_mb,
        "files": args.files,
        "seed": args.seed,
        "jobs": args.jobs,
        "faults": FAULTS,
        "modes": modes,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_restore_mb": max(
            (r["restore"].get("peak_rss_mb") or 0 for r in results if "restore" in r), default=None
        ),
        "peak_rss_emulator_mb": emulator_rss,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    mix = ", ".join(f"{k} {v}" for k, v in FAULTS.items())
    print(f"\n# fault soak: {args.state_mb:g} MiB state, {args.files} files, seed {args.seed}")
    print(f"# fault mix: {mix}")
    print("\n".join(summary(results)))
    for r in results:
        causes = f"; retries by cause {r['retry_causes']}" if r["retry_causes"] else ""
        print(f"# {r['part']} {r['mode']}: {_phases(r)}{causes}")
    rss = {k: report[f"peak_rss_{k}mb"] for k in ("", "restore_", "emulator_")}
    print(
        "# peak RSS (VmHWM, MiB): "
        + ", ".join(f"{k.rstrip('_') or 'bench'} {v:.0f}" for k, v in rss.items() if v)
        + f"; results in {args.out}"
    )
    return 0 if all(r["completed"] and r["verified"] for r in results) else 1


def _phases(r: dict[str, Any]) -> str:
    """``save 38.9 s, restore 11.5 s`` (or push and pull) of one result."""
    names = [k for k in r if k.endswith("_seconds") and isinstance(r[k], float)]
    return ", ".join(f"{k.removesuffix('_seconds')} {r[k]:.1f} s" for k in names)


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['part']} {r['mode']}: completed={r['completed']} verified={r['verified']} "
        f"{r['seconds']:.1f} s ({_phases(r)}), {r['retries']} retries, "
        f"{r['injected']} faults injected"
    )


if __name__ == "__main__":
    sys.exit(main())
