"""The runtime's deadline: its age (``/proc/uptime``) against its expected lifetime."""

from __future__ import annotations

import time


def runtime_age(uptime_path: str = "/proc/uptime") -> float:
    """Seconds since this machine (a Colab VM is recycled per runtime) booted."""
    try:
        with open(uptime_path) as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        # No /proc (macOS): count from when this process first asked.
        return time.monotonic() - _FIRST_ASKED


_FIRST_ASKED = time.monotonic()


class Deadline:
    """Whether there is still time for another checkpoint interval before the runtime ends."""

    def __init__(self, lifetime: float, margin: float, *, age=runtime_age) -> None:
        self.lifetime = lifetime
        self.margin = margin
        self._age = age

    def seconds_left(self) -> float:
        return self.lifetime - self._age()

    def near(self, persist_seconds: float) -> bool:
        """True once what is left is under the margin plus one measured persist."""
        return self.seconds_left() < self.margin + persist_seconds
