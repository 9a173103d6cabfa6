"""What runtime the kernel runs in, and when that runtime started.

``/proc/uptime`` is the host kernel's uptime: on a workstation, a rented VM or a container host
it can be days older than the runtime, so it is never the runtime's age. The start is read
from the runtime itself instead:

- on Colab, and in any container (Docker, Podman, Kubernetes), the container's start: when its
  first process (PID 1 in the container's PID namespace) started;
- elsewhere, the kernel's start: when this process started.

Both come from ``/proc/<pid>/stat`` (start time in clock ticks after boot) plus the boot time.
Without ``/proc`` (macOS, Windows) the start is when this module was first imported.
"""

from __future__ import annotations

import os
import time

from colab_magics.drive.connect import on_colab

COLAB = "colab"
_IMPORTED = time.time()
_CONTAINER_FILES = (".dockerenv", "run/.containerenv")
_CONTAINER_CGROUPS = ("docker", "kubepods", "containerd", "libpod", "lxc")


def runtime_kind() -> str | None:
    """``"colab"`` on a Colab runtime (``google.colab`` importable, or Colab's environment
    variables set); ``None`` where the kind, and so its lifetime, is not known."""
    if "COLAB_RELEASE_TAG" in os.environ or on_colab():
        return COLAB
    return None


def in_container(root: str = "/") -> bool:
    """Whether this process runs in a container (which then is the runtime); ``root``: the
    filesystem root to look at."""
    # Podman and systemd-nspawn set $container, lower-case.
    if os.environ.get("container") or any(  # noqa: SIM112
        os.path.exists(os.path.join(root, p)) for p in _CONTAINER_FILES
    ):
        return True
    try:
        with open(os.path.join(root, "proc", "1", "cgroup")) as f:
            text = f.read()
    except OSError:
        return False
    return any(word in text for word in _CONTAINER_CGROUPS)


def process_started(pid: int | str = "self", root: str = "/") -> float | None:
    """When process ``pid`` started, as ``time.time()``; None where ``/proc`` cannot tell."""
    proc = os.path.join(root, "proc")
    try:
        with open(os.path.join(proc, str(pid), "stat")) as f:
            stat = f.read()
        with open(os.path.join(proc, "uptime")) as f:
            uptime = float(f.read().split()[0])
        # Field 22 (starttime) counts after the command name, which may hold spaces or ')'.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        hertz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    booted = time.time() - uptime
    return booted + ticks / hertz


def runtime_started(root: str = "/") -> float:
    """When this runtime started, as ``time.time()``: the container's start on Colab or in a
    container, else this kernel's; without ``/proc``, when this module was imported."""
    pid: int | str = 1 if runtime_kind() == COLAB or in_container(root) else "self"
    started = process_started(pid, root)
    if started is None and pid == 1:  # PID 1 hidden (hidepid): this kernel is the next best
        started = process_started("self", root)
    return _IMPORTED if started is None else min(started, time.time())


def runtime_age(root: str = "/") -> float:
    """Seconds since :func:`runtime_started`."""
    return max(0.0, time.time() - runtime_started(root))
