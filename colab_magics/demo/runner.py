"""``python -m colab_magics demo``: demo.ipynb killed mid-training, resumed in a fresh runtime.

Runtime 1 runs the notebook in a real kernel and is SIGKILLed part-way through the training
cell; its working directory (the runtime's local disk, staging included) is deleted. Runtime 2
runs the notebook from the top in a new kernel and an empty directory and must resume from a
checkpoint Drive confirmed, once runtime 1's lease on the run has lapsed (the demo's lease TTL
is 15 s unless ``COLAB_MAGICS_LEASE_SECONDS`` says otherwise). A reference runtime trains the
same cell under another run name without interruption; the final weights must match it bit for
bit. Drive is the embedded emulator, in this process, so it outlives every kernel.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from colab_magics.checkpoint.lease import LEASE_ENV
from colab_magics.demo import notebook as nb
from colab_magics.demo.kernel import DemoKernel, KernelDied
from colab_magics.demo.report import Runtime, claims, last_step, lease_note, render

TRAINING_MAGIC = re.compile(r"^(%%checkpointed\s+)(\S+)")
DEFAULT_NOTEBOOK = Path(__file__).resolve().parents[2] / "demo.ipynb"
DEMO_LEASE_SECONDS = "15"
# After the notebook, how long taking the run's lease waited (not saved in the notebook).
LEASE_PROBE = """
_waited = ckpt.waited_for_lease
print(f"lease: waited {_waited.seconds:.1f} s for runtime {_waited.holder}" if _waited
      else "lease: no wait")
"""
# One runtime's run: what it printed, each code cell's (outputs, execution count), widget state.
Executed = tuple[Runtime, list[tuple[list[dict[str, Any]], int | None]], dict[str, Any] | None]


def is_training(code: str) -> bool:
    return TRAINING_MAGIC.match(code.lstrip()) is not None


def renamed_run(code: str, suffix: str) -> str:
    """The training cell with its run name changed: a run that finds no checkpoint to resume."""
    return TRAINING_MAGIC.sub(lambda m: m.group(1) + m.group(2) + suffix, code.lstrip(), count=1)


class _KillSwitch:
    """Watches the training cell's ``step N/TOTAL`` lines; says when to kill the kernel."""

    def __init__(self, label: str, fraction: float | None, verbose: bool) -> None:
        self.label = label
        self.fraction = fraction
        self.verbose = verbose
        self.text = ""
        self.step: int | None = None

    def __call__(self, text: str) -> bool:
        self.text += text
        seen = last_step(self.text)
        if seen is None or seen[0] == self.step:
            return False
        self.step, total = seen
        if self.verbose and self.step % 50 == 0:
            print(f"  {self.label}: step {self.step}/{total}", flush=True)
        return self.fraction is not None and self.step >= math.ceil(self.fraction * total)


def run_notebook(
    cells: list[str],
    cwd: str,
    env: dict[str, str],
    label: str,
    *,
    kill_fraction: float | None = None,
    log: str | None = None,
    verbose: bool = True,
    probe: str | None = None,
) -> Executed:
    """Run ``cells`` in a new kernel in ``cwd``; returns what it printed, its outputs, widgets.

    ``probe``, run after the cells when all went well, adds to what it printed only.
    """
    runtime = Runtime(label)
    results: list[tuple[list[dict[str, Any]], int | None]] = []
    started = time.monotonic()
    kernel = DemoKernel(cwd, env, log=log)
    runtime.pid = kernel.pid
    try:
        for index, code in enumerate(cells, 1):
            first = code.strip().splitlines()[0] if code.strip() else ""
            training = is_training(code)
            watch = _KillSwitch(label, kill_fraction if training else None, verbose)
            try:
                cell = kernel.run(code, on_stream=watch if training else None)
            except (KernelDied, TimeoutError) as exc:
                runtime.errors.append(f"cell {index} ({first}): {exc}")
                break
            results.append((cell.outputs, cell.execution_count))
            runtime.text += "".join(nb.output_text(o) + "\n" for o in cell.outputs)
            if kernel.killed:
                runtime.killed_at = watch.step
                print(f"  {label}: SIGKILL at step {watch.step}", flush=True)
                break
            if cell.error:
                runtime.errors.append(f"cell {index} ({first}): {cell.error}")
            if verbose:
                print(f"  {label} [{index}/{len(cells)}] {first[:60]}", flush=True)
        else:  # every cell ran
            if probe is not None and not runtime.errors:
                cell = kernel.run(probe)
                runtime.text += "".join(nb.output_text(o) + "\n" for o in cell.outputs)
    finally:
        if not kernel.killed:
            kernel.close()
    runtime.seconds = time.monotonic() - started
    return runtime, results, kernel.widgets.metadata()


class _Runtimes:
    """Fresh runtimes against one Drive: each a new kernel in a new, empty directory."""

    def __init__(self, scratch: str, drive: dict[str, str]) -> None:
        self.scratch = scratch
        self.drive = drive

    def run(self, name: str, label: str, cells: list[str], **kwargs: Any) -> Executed:
        cwd = tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch)
        env = {
            **self.drive,
            "COLAB_MAGICS_STAGING": os.path.join(cwd, ".staging"),
            LEASE_ENV: demo_lease_seconds(),
        }
        log = os.path.join(self.scratch, f"{name}.log")
        runtime, results, widgets = run_notebook(cells, cwd, env, label, log=log, **kwargs)
        if runtime.errors:
            _print_tail(log, label)
        if runtime.killed_at is not None:
            shutil.rmtree(cwd)  # a new runtime's local disk is empty
            runtime.wiped = not os.path.exists(cwd)
        return runtime, results, widgets


def _print_tail(log: str, label: str, lines: int = 20) -> None:
    try:
        with open(log, errors="replace") as f:
            tail = f.read().splitlines()[-lines:]
    except OSError:
        return
    if tail:
        print(f"  {label}: the kernel's log ends with:", *tail, sep="\n    ")


def run_demo(
    notebook_path: str | os.PathLike[str] = DEFAULT_NOTEBOOK,
    out: str | os.PathLike[str] = "demo.executed.ipynb",
    *,
    kill_fraction: float = 0.6,
) -> int:
    """Run the demo and print its report; 0 when every claim holds, 1 otherwise."""
    from colab_magics.emulator import start_emulator

    started = time.monotonic()
    document = nb.load(notebook_path)
    cells = [nb.source(cell) for cell in nb.code_cells(document)]
    if not any(is_training(code) for code in cells):
        print(f"{notebook_path}: no %%checkpointed cell to interrupt")
        return 1
    reference_cells = [renamed_run(c, "-reference") if is_training(c) else c for c in cells]
    with (
        tempfile.TemporaryDirectory(prefix="colab_magics-demo-") as scratch,
        start_emulator(os.path.join(scratch, "drive")) as emulator,
    ):
        print(f"Drive: the local emulator at {emulator.url} (no Google account needed)")
        runtimes = _Runtimes(
            scratch,
            {"COLAB_MAGICS_DRIVE_URL": emulator.url, "COLAB_MAGICS_DRIVE_TOKEN": emulator.token},
        )
        # The uninterrupted reference runs beside runtimes 1 and 2: its own kernel, its own
        # run name on the same Drive, so nothing it does can help the resumed run.
        with ThreadPoolExecutor(1) as pool:
            print("Reference: the same notebook, uninterrupted, under another run name (beside)")
            pending = pool.submit(
                runtimes.run, "reference", "reference", reference_cells, verbose=False
            )
            print("Runtime 1 runs demo.ipynb and is killed part-way through training")
            killed, _, _ = runtimes.run("runtime1", "runtime 1", cells, kill_fraction=kill_fraction)
            print("Runtime 2, a fresh kernel on an empty disk, runs the notebook from the top")
            resumed, results, widgets = runtimes.run(
                "runtime2", "runtime 2", cells, probe=LEASE_PROBE
            )
            reference, _, _ = pending.result()
            print(f"Reference finished in {reference.seconds:.1f} s")
    nb.save(nb.with_outputs(document, results, widgets), out)
    total = _total_steps(killed, resumed)
    found = claims(killed, resumed, reference, total)
    notes = [lease_note(killed, resumed, float(demo_lease_seconds()))]
    elapsed = time.monotonic() - started
    print(render(found, [killed, resumed, reference], elapsed, os.fspath(out), notes))
    return 0 if all(claim.ok for claim in found) else 1


def demo_lease_seconds() -> str:
    """The demo's lease TTL: short, so runtime 2 waits seconds, not the default 30 s."""
    return os.environ.get(LEASE_ENV) or DEMO_LEASE_SECONDS


def _total_steps(*runtimes: Runtime) -> int:
    for runtime in runtimes:
        seen = last_step(runtime.text)
        if seen is not None:
            return seen[1]
    return 0
