"""Run a trainer's recipe in real kernels: kill one mid-training, resume in another.

The recipe's cells print ``STEP n | <the --dir panel line>`` as the trainer advances, so the
test can kill the kernel at a chosen point (past step ``n``, while a checkpoint uploads).
"""

from __future__ import annotations

import re
import shutil
import time

from colab_magics.checkpoint.dir_units import UnitStore
from colab_magics.demo.kernel import DemoKernel
from tests.e2e.runtimes import new_runtime, runtime_env, stream

STEP_LINE = re.compile(r"^STEP (\d+) \| (.*)$", re.MULTILINE)
PANEL = "ckpt.folder.progress.get('message')"
"""What the panel says about --dir, for a recipe's progress hook to print."""


class Runtime:
    """A kernel in its own empty working directory (a fresh runtime's local disk)."""

    def __init__(self, emulator, tmp_path, name: str, env: dict[str, str] | None = None) -> None:
        self.cwd = new_runtime(tmp_path, name)
        self.kernel = DemoKernel(self.cwd, {**runtime_env(emulator, self.cwd), **(env or {})})

    def run(self, code: str, timeout: float = 120) -> str:
        result = self.kernel.run(code, timeout=timeout)
        assert result.error is None, f"{result.error}\n{stream(result, 'stderr')[-3000:]}"
        return stream(result)

    def close(self) -> None:
        if not self.kernel.killed:
            self.kernel.close()

    def kill_while_uploading(self, cell: str, after_step: int) -> tuple[int, str]:
        """Run ``cell`` and SIGKILL the kernel at the first step past ``after_step`` at which
        one checkpoint is confirmed and a newer one uploading, then wipe its disk; returns
        that step and the panel line."""
        seen: list[tuple[int, str]] = []

        def past(text: str) -> bool:
            seen.extend((int(m.group(1)), m.group(2)) for m in STEP_LINE.finditer(text))
            if not seen or seen[-1][0] <= after_step:
                return False
            return "confirmed on Drive, " in seen[-1][1] and "uploading" in seen[-1][1]

        try:
            self.kernel.run(cell, timeout=120, on_stream=past)
            assert self.kernel.killed, f"the cell ended before the kill: {seen[-3:]}"
        finally:
            self.close()
        shutil.rmtree(self.cwd, ignore_errors=True)
        time.sleep(1)  # requests the emulator already holds finish; then Drive stays as it is
        return seen[-1]


def units_on_drive(client, run: str) -> dict:
    """Unit path -> manifest, for the units of ``run``'s --dir that Drive holds whole."""
    return {
        m.unit: m
        for m in UnitStore(client, f"colab_magics/checkpoints/{run}/dir", run=run).confirmed()
    }


def partial_uploads(client, run: str) -> int:
    """Blob folders on Drive that no manifest names: units cut off mid-upload."""
    children = client.listdir(f"colab_magics/checkpoints/{run}/dir")
    tags = {c.name.rsplit("-", 1)[-1][:8] for c in children if c.name.startswith("unit-")}
    return sum(1 for c in children if c.name.startswith("blobs-") and c.name[6:] not in tags)


def uploading_unit(panel: str) -> str | None:
    """The checkpoint a panel line says is uploading ("x confirmed on Drive, y uploading")."""
    match = re.search(r"(?:^|, )(\S+) uploading \(", panel)
    return match.group(1) if match else None
