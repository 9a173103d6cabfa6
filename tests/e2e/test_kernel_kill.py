"""Kill a real kernel mid-training with SIGKILL; a new kernel on an empty disk resumes exactly.

Each trial: kernel A trains in a checkpointed cell and is SIGKILLed at a random step; its
working directory (the runtime's local disk, staging included) is deleted; kernel B, in a new
empty directory, runs the same cells and finishes. Final weights must equal an uninterrupted
run's bit for bit, B must have resumed from a checkpoint Drive confirmed (after A's lease on
the run lapsed), and the work redone must be at most one interval (plus the steps that ran
while that checkpoint was uploading).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import time

import pytest

from colab_magics.demo.kernel import DemoKernel
from tests.e2e.runtimes import new_runtime, runtime_env, stream

STEPS = 60
EVERY = 5
STEP_SECONDS = 0.04

TORCH = {
    "setup": """
%load_ext colab_magics
import hashlib, time, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
""",
    "save": "model,opt",
    "step": """
    x = torch.randn(64, 16)          # the global RNG: restored with the checkpoint
    loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
""",
    "digest": "b''.join(v.numpy().tobytes() for v in model.state_dict().values())",
}

NUMPY = {
    "setup": """
%load_ext colab_magics
import hashlib, time
import numpy as np
np.random.seed(0)
w = np.zeros(16); velocity = np.zeros(16); history = []
""",
    "save": "w,velocity,history",
    "step": """
    x = np.random.randn(64, 16)      # NumPy's global generator: restored too
    grad = 2 * x.T @ (x @ w - x.sum(1)) / len(x)
    velocity = 0.9 * velocity - 0.01 * grad
    w += velocity                    # in place: the array object stays the same
    history.append(float(w[0]))
""",
    "digest": "w.tobytes() + velocity.tobytes() + repr(history).encode()",
}

TRAIN = """%%checkpointed RUN --save SAVE --every EVERY
for step in ckpt.range(STEPS):STEP
    time.sleep(STEP_SECONDS)
    with open("progress.txt", "a") as f:
        f.write(f"{step}\\n")
    print(step, flush=True)
"""

REPORT = """
print("DIGEST", hashlib.sha256(EXPR).hexdigest())
print("RESTORED", ckpt.restored_from.step if ckpt.restored_from else None)
"""


def _cells(model: dict, run: str) -> tuple[str, str, str]:
    train = TRAIN.replace("SAVE", model["save"]).replace("STEP_SECONDS", str(STEP_SECONDS))
    train = train.replace("STEPS", str(STEPS)).replace("EVERY", str(EVERY))
    train = train.replace("STEP", model["step"].rstrip()).replace("RUN", run)
    return model["setup"], train, REPORT.replace("EXPR", model["digest"])


def _finish(emulator, cwd, model, run):
    return finish_cells(cwd, runtime_env(emulator, cwd), _cells(model, run))


def finish_cells(cwd: str, env: dict[str, str], cells: tuple[str, str, str]):
    """Run the setup, training and report cells in a new kernel: (digest, step restored)."""
    setup, train, report_cell = cells
    kernel = DemoKernel(cwd, env)
    try:
        assert kernel.run(setup).error is None
        result = kernel.run(train)
        assert result.error is None, result.error
        report = stream(kernel.run(report_cell))
    finally:
        kernel.close()
    digest = re.search(r"DIGEST (\w+)", report).group(1)
    restored = re.search(r"RESTORED (\w+)", report).group(1)
    return digest, None if restored == "None" else int(restored)


def _last_step(cwd):
    path = os.path.join(cwd, "progress.txt")
    if not os.path.exists(path):
        return -1
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line]
    return int(lines[-1]) if lines else -1


@pytest.mark.slow
@pytest.mark.parametrize(("model", "trials"), [(TORCH, 3), (NUMPY, 2)], ids=["torch", "numpy"])
def test_sigkill_at_random_steps_loses_at_most_one_interval(emulator, tmp_path, model, trials):
    expected, _ = _finish(emulator, new_runtime(tmp_path, "straight"), model, "straight")
    rng = random.Random(20261123)
    for trial in range(trials):
        run = f"killed{trial}"
        setup, train, _ = _cells(model, run)
        kill_after = rng.randint(8, STEPS - 10)
        cwd = new_runtime(tmp_path, f"{run}-a")

        def past_kill_point(text: str, kill_after: int = kill_after) -> bool:
            steps = [int(t) for t in text.split() if t.isdigit()]
            if not steps or steps[-1] < kill_after:
                return False
            time.sleep(rng.uniform(0, STEP_SECONDS))  # anywhere inside a step or a snapshot
            return True

        kernel = DemoKernel(cwd, runtime_env(emulator, cwd))
        try:
            assert kernel.run(setup).error is None
            kernel.run(train, timeout=60, on_stream=past_kill_point)
            assert kernel.killed, f"trial {trial}: the training cell ended before the kill"
        finally:
            if not kernel.killed:
                kernel.close()
        killed_at = _last_step(cwd)
        shutil.rmtree(cwd)  # a new runtime's disk is empty

        digest, restored = _finish(emulator, new_runtime(tmp_path, f"{run}-b"), model, run)
        assert digest == expected, f"trial {trial}: resumed weights differ from the straight run"
        assert restored is not None and restored % EVERY == 0, (trial, restored)
        redone = killed_at + 1 - restored
        # At most one interval, plus the steps that ran while that checkpoint was uploading.
        assert 0 <= redone <= EVERY + 3, (trial, killed_at, restored)
