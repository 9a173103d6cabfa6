"""A real IPython kernel, driven through jupyter_client, that can die like a recycled VM."""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Callable

from colab_magics.demo.outputs import CellOutputs, WidgetStates

# Environment a user's shell may hold that would point the demo's kernels elsewhere.
_SCRUBBED = ("COLAB_MAGICS_MOUNT", "GOOGLE_APPLICATION_CREDENTIALS")


class KernelDied(RuntimeError):
    """The kernel went away while a cell ran, and not because we killed it."""


class DemoKernel:
    """One kernel in its own working directory; ``kill()`` sends SIGKILL, nothing gentler."""

    def __init__(
        self, cwd: str, env: dict[str, str], log: str | None = None, kernel_name: str = "python3"
    ) -> None:
        from jupyter_client import KernelManager  # only the demo needs it

        base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        # The kernel process's own chatter (not cell output) goes to a log, not our terminal.
        self._log = open(log or os.devnull, "ab")  # noqa: SIM115 - closed in close()
        self.manager = KernelManager(kernel_name=kernel_name)
        self.manager.start_kernel(cwd=cwd, env={**base, **env}, stdout=self._log, stderr=self._log)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.widgets = WidgetStates()
        self.killed = False

    def run(
        self,
        code: str,
        *,
        timeout: float = 300,
        on_stream: Callable[[str], bool] | None = None,
    ) -> CellOutputs:
        """Run one cell and collect its outputs until the kernel is idle again.

        ``on_stream`` sees each piece of stream text; when it returns True the kernel is killed
        on the spot and the outputs so far are returned (``self.killed`` is then True).
        """
        msg_id = self.client.execute(code, allow_stdin=False)
        cell = CellOutputs(self.widgets)
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                if not self.manager.is_alive():
                    raise KernelDied("the kernel died while the cell ran") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the cell ran longer than {timeout:.0f} s") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    return cell
                continue
            text = cell.add(msg)
            if text is not None and on_stream is not None and on_stream(text):
                self.kill()
                return cell

    @property
    def pid(self) -> int:
        provisioner = getattr(self.manager, "provisioner", None)
        process = provisioner.process if provisioner is not None else self.manager.kernel
        return process.pid

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, uploads in flight are cut."""
        os.kill(self.pid, signal.SIGKILL)
        self.killed = True
        self.close()

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=True)
        self.manager.cleanup_resources()
        self._log.close()
