"""Benchmarks' shared helper: an emulator in its own process, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

BENCH_TOKEN = "bench-token"


@contextmanager
def emulator_process(*extra_args: str, idle: bool = False) -> Iterator[str]:
    """Run ``python -m colab_magics.emulator`` on a temporary root; yield its base URL.

    ``idle`` runs the server only on CPU time nothing else wants (SCHED_IDLE), for benchmarks
    where it stands in for Google's servers and its CPU use is not the client's cost.
    """
    with tempfile.TemporaryDirectory(prefix="colab_magics-bench-") as root:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "colab_magics.emulator",
                "--root",
                os.path.join(root, "d"),
                "--token",
                BENCH_TOKEN,
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_idle_priority if idle else None,
        )
        try:
            url = proc.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"emulator did not start (first line: {url!r})")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _idle_priority() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def make_file(path: str, size: int) -> None:
    """Write ``size`` random-ish bytes (random blocks repeated, so it is quick to make)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, len(block))
            out.write(block[:n])
            left -= n


def set_emulator(url: str, **settings: float) -> None:
    """Change a running emulator's settings (latency, fault rates) through its control endpoint."""
    request = urllib.request.Request(
        f"{url}_emulator/settings",
        data=json.dumps(settings).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {BENCH_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        response.read()
