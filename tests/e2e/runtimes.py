"""What the end-to-end tests share: a runtime's environment and folder, a cell's text output."""

from __future__ import annotations

import os

LEASE_SECONDS = 5
"""The lease TTL in the tests' kernels: a killed runtime's lease lapses this soon. Much shorter,
and a kernel slowed by a loaded machine could go TTL/2 without a confirmed renewal and skip a
checkpoint."""


def runtime_env(emulator, cwd: str) -> dict[str, str]:
    """A kernel's environment: Drive is ``emulator``, staging is on its own local disk."""
    return {
        "COLAB_MAGICS_DRIVE_URL": emulator.url,
        "COLAB_MAGICS_DRIVE_TOKEN": emulator.token,
        "COLAB_MAGICS_STAGING": os.path.join(cwd, "staging"),
        "COLAB_MAGICS_LEASE_SECONDS": str(LEASE_SECONDS),
    }


def new_runtime(tmp_path, name: str) -> str:
    """An empty working directory: a fresh runtime's local disk."""
    cwd = tmp_path / name
    cwd.mkdir()
    return str(cwd)


def stream(cell, name: str = "stdout") -> str:
    return "".join(o["text"] for o in cell.outputs if o.get("name") == name)
