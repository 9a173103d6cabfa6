"""SIGKILL a real kernel in the middle of an epoch of ``ckpt.batches`` over a shuffled
DataLoader (Dropout, a scheduler stepped per epoch); a new kernel on an empty disk resumes
mid-epoch and ends with the weights of an uninterrupted run, bit for bit."""

from __future__ import annotations

import re
import shutil

import pytest

from colab_magics.demo.kernel import DemoKernel
from tests.e2e.runtimes import new_runtime, runtime_env, stream

PER_EPOCH, EPOCHS, EVERY = 10, 4, 3

SETUP = """
%load_ext colab_magics
import hashlib, time, torch
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
data = TensorDataset(torch.randn(160, 16), torch.randn(160, 1))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Dropout(0.2), torch.nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
"""

TRAIN = """%%checkpointed RUN --save model,opt,sched --every EVERY
for epoch, (x, y) in ckpt.batches(loader, epochs=EPOCHS):
    loss = (model(x) - y).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if ckpt.epoch_done:
        sched.step()
    time.sleep(0.05)
    print("STEP", ckpt.step, flush=True)
"""

REPORT = """
digest = b''.join(v.numpy().tobytes() for v in model.state_dict().values())
print("DIGEST", hashlib.sha256(digest).hexdigest())
print("RESTORED", ckpt.restored_from.step if ckpt.restored_from else None)
"""


def _train_cell(run: str) -> str:
    return TRAIN.replace("RUN", run).replace("EVERY", str(EVERY)).replace("EPOCHS", str(EPOCHS))


def _finish(emulator, cwd: str, run: str) -> tuple[str, int | None]:
    kernel = DemoKernel(cwd, runtime_env(emulator, cwd))
    try:
        assert kernel.run(SETUP).error is None
        result = kernel.run(_train_cell(run))
        assert result.error is None, result.error
        report = stream(kernel.run(REPORT))
    finally:
        kernel.close()
    restored = re.search(r"RESTORED (\w+)", report).group(1)
    return re.search(r"DIGEST (\w+)", report).group(1), None if restored == "None" else int(
        restored
    )


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_bit_identical(emulator, tmp_path):
    expected, _ = _finish(emulator, new_runtime(tmp_path, "straight"), "straight")
    cwd = new_runtime(tmp_path, "killed-a")
    kill_after = PER_EPOCH + PER_EPOCH // 2 + 1  # the middle of the second epoch

    def past_kill_point(text: str) -> bool:
        steps = [int(s) for s in re.findall(r"STEP (\d+)", text)]
        return bool(steps) and steps[-1] >= kill_after

    kernel = DemoKernel(cwd, runtime_env(emulator, cwd))
    try:
        assert kernel.run(SETUP).error is None
        kernel.run(_train_cell("killed"), timeout=60, on_stream=past_kill_point)
        assert kernel.killed, "the training cell ended before the kill"
    finally:
        if not kernel.killed:
            kernel.close()
    shutil.rmtree(cwd)  # a new runtime's disk is empty

    digest, restored = _finish(emulator, new_runtime(tmp_path, "killed-b"), "killed")
    assert restored is not None and restored % PER_EPOCH != 0, restored  # resumed mid-epoch
    assert digest == expected
