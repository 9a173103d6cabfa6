"""A real Jupyter kernel driven through jupyter_client, for end-to-end tests."""

from __future__ import annotations

import os
import queue
import signal
from typing import Any

from jupyter_client import KernelManager


class Kernel:
    """One IPython kernel in its own working directory; killed like a lost runtime."""

    def __init__(self, cwd: str, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=cwd, env={**os.environ, **env})
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 120) -> dict[str, Any]:
        """Run ``code``; returns ``{"status", "stdout", "error"}`` once the kernel is idle."""
        msg_id = self.client.execute(code)
        stdout, error = [], None
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                stdout.append(content["text"])
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        return {"stdout": "".join(stdout), "error": error}

    def start(self, code: str) -> str:
        """Send ``code`` without waiting for it."""
        return self.client.execute(code)

    def drain(self) -> None:
        try:
            while True:
                self.client.get_iopub_msg(timeout=0.01)
        except queue.Empty:
            pass

    @property
    def pid(self) -> int:
        provisioner = getattr(self.manager, "provisioner", None)
        process = provisioner.process if provisioner is not None else self.manager.kernel
        return process.pid

    def kill(self) -> None:
        """SIGKILL: no handler, no flush, no goodbye — what a recycled VM does."""
        os.kill(self.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=True)
        self.manager.cleanup_resources()
