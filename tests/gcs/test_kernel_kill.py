"""Kill a real kernel mid-training with ``--to gs://``; a new kernel on an empty disk resumes.

The Drive test (tests/e2e/test_kernel_kill.py) with the bucket as the store: kernel A trains
in ``%%checkpointed ... --to gs://...`` and is SIGKILLed; its disk is deleted; kernel B waits
out A's lease in the bucket, resumes from the newest confirmed checkpoint, and ends
with the weights of an uninterrupted run, bit for bit.
"""

from __future__ import annotations

import os
import shutil

import pytest

from colab_magics.demo.kernel import DemoKernel
from tests.e2e.runtimes import LEASE_SECONDS, new_runtime
from tests.e2e.test_kernel_kill import EVERY, NUMPY, _cells, _last_step, finish_cells


def _env(gcs_emulator, cwd: str) -> dict[str, str]:
    return {
        "STORAGE_EMULATOR_HOST": gcs_emulator.url,
        "COLAB_MAGICS_STAGING": os.path.join(cwd, "staging"),
        "COLAB_MAGICS_LEASE_SECONDS": str(LEASE_SECONDS),
    }


def _gs_cells(run: str) -> tuple[str, str, str]:
    setup, train, report = _cells(NUMPY, run)
    train = train.replace(" --every ", f" --to gs://data-bucket/ckpt/{run} --every ", 1)
    assert "--to gs://" in train
    return setup, train, report


def _finish(gcs_emulator, cwd: str, run: str) -> tuple[str, int | None]:
    return finish_cells(cwd, _env(gcs_emulator, cwd), _gs_cells(run))


@pytest.mark.slow
def test_sigkill_then_resume_from_the_bucket(gcs_emulator, bucket, tmp_path):
    expected, _ = _finish(gcs_emulator, new_runtime(tmp_path, "straight"), "straight")
    setup, train, _ = _gs_cells("killed")
    cwd = new_runtime(tmp_path, "a")

    def past_kill_point(text: str) -> bool:
        steps = [int(t) for t in text.split() if t.isdigit()]
        return bool(steps) and steps[-1] >= 23

    kernel = DemoKernel(cwd, _env(gcs_emulator, cwd))
    try:
        assert kernel.run(setup).error is None
        kernel.run(train, timeout=60, on_stream=past_kill_point)
        assert kernel.killed, "the training cell ended before the kill"
    finally:
        if not kernel.killed:
            kernel.close()
    killed_at = _last_step(cwd)
    shutil.rmtree(cwd)

    digest, restored = _finish(gcs_emulator, new_runtime(tmp_path, "b"), "killed")
    assert digest == expected
    assert restored is not None and restored % EVERY == 0 and restored > 0
    assert 0 <= killed_at + 1 - restored <= EVERY + 3
