"""Two runtimes, one run: the same ``%%checkpointed NAME`` in two kernels (two Colab tabs).

Kernel A trains; kernel B runs the same cell and is refused in one line before it restores or
trains anything, while A trains on. A is SIGKILLed; B runs the cell again and, once A's lease
has lapsed, resumes from A's newest checkpoint. On Drive, A's checkpoints all come before B's.
"""

from __future__ import annotations

import re

import pytest

from colab_magics.checkpoint.manifest import Manifest
from colab_magics.demo.kernel import DemoKernel
from colab_magics.drive import connect
from tests.e2e.runtimes import new_runtime, runtime_env, stream

FOLDER = "colab_magics/checkpoints/shared"
SETUP = """
%load_ext colab_magics
%drive_connect
import time
import numpy as np
w = np.zeros(4)
STEPS = 100_000
"""
TRAIN = """%%checkpointed shared --save w --every 5 --keep 1000
for step in ckpt.range(STEPS):
    w += 1
    time.sleep(0.02)
    print(step, flush=True)
"""


class _StepsThenRefusal:
    """A's stream watcher: at step 12 run B's attempt; kill A 15 steps after B was refused."""

    def __init__(self, other: DemoKernel) -> None:
        self.other = other
        self.text = ""
        self.steps: list[int] = []
        self.refused = None
        self.refused_at: int | None = None

    def __call__(self, text: str) -> bool:
        self.text += text
        self.steps = [int(s) for s in re.findall(r"^(\d+)\n", self.text, re.M)]
        if not self.steps:
            return False
        if self.refused is None and self.steps[-1] >= 12:
            self.refused = self.other.run(TRAIN, timeout=60)  # A trains on meanwhile
            self.refused_at = self.steps[-1]
        return self.refused_at is not None and self.steps[-1] >= self.refused_at + 15


def _manifests(emulator) -> list[Manifest]:
    """Every manifest of the run, in the order Drive created them."""
    with connect(url=emulator.url, token=emulator.token) as client:
        files = [f for f in client.listdir(FOLDER) if f.name.startswith("manifest-")]
        files.sort(key=lambda f: (f.created_time, f.id))
        return [Manifest.from_json(client.read_bytes(f)) for f in files]


@pytest.mark.slow
def test_a_second_kernel_is_refused_then_takes_over_once_the_first_is_killed(emulator, tmp_path):
    cwd_a, cwd_b = new_runtime(tmp_path, "a"), new_runtime(tmp_path, "b")
    a = DemoKernel(cwd_a, runtime_env(emulator, cwd_a))
    b = DemoKernel(cwd_b, runtime_env(emulator, cwd_b))
    try:
        assert a.run(SETUP).error is None and b.run(SETUP).error is None
        watch = _StepsThenRefusal(b)
        a.run(TRAIN, timeout=120, on_stream=watch)
        assert a.killed, "A's training cell ended before the kill"

        refused = watch.refused
        error = stream(refused, "stderr")
        assert error.startswith("UsageError: ") and error.count("\n") == 1, error
        assert "run shared is in use by another runtime" in error
        assert "stop it there, or use another NAME" in error
        assert stream(refused) == ""  # not one step ran in B
        probe = stream(b.run("print('ckpt' in globals(), float(w.sum()))"))
        assert probe.split() == ["False", "0.0"]  # nothing was restored into B either

        by_a = _manifests(emulator)
        assert by_a and len({m.holder for m in by_a}) == 1 and by_a[0].holder  # none by B
        newest_of_a = by_a[-1].step
        assert newest_of_a > watch.refused_at  # A went on checkpointing after B was refused

        steps = newest_of_a + 10
        assert b.run(f"STEPS = {steps}").error is None
        resumed = b.run(TRAIN, timeout=60)
        assert resumed.error is None and stream(resumed, "stderr") == ""
        steps_b = [int(s) for s in stream(resumed).split()]
        report = b.run(
            "print(ckpt.restored_from.step, ckpt.waited_for_lease is not None, int(w[0]))"
        )
        restored, waited, w0 = stream(report).split()
    finally:
        if not a.killed:
            a.close()
        b.close()
    assert int(restored) == newest_of_a == steps_b[0]
    # B re-ran within a second or two of the kill, well inside A's lease: it waited it out.
    assert waited == "True"
    assert int(w0) == steps == steps_b[-1] + 1  # every step exactly once from there

    manifests = _manifests(emulator)
    holders = [m.holder for m in manifests]
    first_of_b = holders.index(holders[-1])
    assert len(set(holders)) == 2 and set(holders[:first_of_b]) == {holders[0]}
    assert set(holders[first_of_b:]) == {holders[-1]}  # never interleaved
    order = [m.step for m in manifests]
    assert order == sorted(order) and order[first_of_b] > newest_of_a
