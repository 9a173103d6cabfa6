"""What the Drive guard adds to a cell that names a mount folder, when nothing changed.

A real IPython shell runs the same cell with and without the guard against the emulator and
its simulated mount, alternating the two so that a busy machine slows both alike; the figure
is the median of the per-pair differences, in wall-clock time and in the thread's CPU time
(which other processes on a shared machine do not inflate). The check alone is timed too,
with the default view age (1 s) and with a changes-feed call on every check, next to a bare
``os.listdir`` of the folder (the part of a check no cache may stand in for). ``--profile``
prints where a check's time goes.

    python bench/guard_cost.py [--files 100 5000] [--cells 200] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

from colab_magics.drive import DriveClient
from colab_magics.drive.service import token_credentials
from colab_magics.emulator import start_emulator
from colab_magics.emulator.records import NewFile
from colab_magics.guard import Guard, install, uninstall


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, thread CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def median_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    runs = [timed(fn) for _ in range(n)]
    return tuple(statistics.median(r[i] for r in runs) * 1000 for i in (0, 1))  # type: ignore[return-value]


def paired_ms(
    shell: InteractiveShell, guard: Guard, cell: str, n: int
) -> tuple[float, float, float, float]:
    """Median (bare wall, guarded wall, added wall, added CPU) ms over ``n`` alternating pairs."""
    bare, guarded, added_wall, added_cpu = [], [], [], []
    for _ in range(n):
        b = timed(lambda: shell.run_cell(cell, store_history=False))
        install(shell, guard)
        try:
            g = timed(lambda: shell.run_cell(cell, store_history=False))
        finally:
            uninstall(shell)
        bare.append(b[0])
        guarded.append(g[0])
        added_wall.append(g[0] - b[0])
        added_cpu.append(g[1] - b[1])
    return tuple(  # type: ignore[return-value]
        statistics.median(x) * 1000 for x in (bare, guarded, added_wall, added_cpu)
    )


def profile(guard: Guard, data: Path, n: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        guard.run([data])
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(8)


def measure(files: int, cells: int, tmp: Path, shell: InteractiveShell, prof: bool) -> str:
    mount = tmp / f"mnt{files}"
    with start_emulator(tmp / f"drive{files}", mount=mount, mount_lag=30) as handle:
        client = DriveClient(handle.url, token_credentials(handle.token), mount_root=str(mount),
                             rate=None)  # fmt: skip
        folder = client.ensure_folder("data")
        for i in range(files):  # straight into the store: setup in seconds, not minutes
            handle.app.store.create(NewFile(name=f"img{i:05}.jpg", parents=[folder.id]), None)
        handle.mount.sync_now()
        # The simulated mount syncs from a thread of this process, walking the folder every
        # poll; on Colab the mount is another process (DriveFS). Stopped, it is a still
        # folder, and its thread no longer takes the GIL from the timed code.
        handle.mount.stop()
        data = mount / "data"
        since = time.time() - 60
        guard = Guard(client, mount, since=since)
        eager = Guard(client, mount, max_age=0, since=since)
        guard.check_paths([data])
        eager.check_paths([data])
        listdir, listdir_cpu = median_ms(lambda: os.listdir(data), cells)
        check, check_cpu = median_ms(lambda: guard.run([data]), cells)
        check_feed, _ = median_ms(lambda: eager.run([data]), cells)
        if prof:
            profile(guard, data, cells)
        cell = f'n = len(__import__("os").listdir("{data}"))'
        before = client.requests
        bare, guarded, added, added_cpu = paired_ms(shell, guard, cell, cells)
        calls = client.requests - before
        client.close()
    return (
        f"{files:6d}-entry folder: listdir {listdir:5.2f} ms (CPU {listdir_cpu:5.2f}) | check "
        f"{check:5.2f} ms (CPU {check_cpu:5.2f}; changes feed every check {check_feed:5.2f}) | "
        f"cell bare {bare:5.2f} ms, guarded {guarded:5.2f} ms, added {added:+.2f} ms "
        f"(CPU {added_cpu:+.2f}) | {calls} Drive calls in {cells} guarded cells"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, nargs="+", default=[100, 5000])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="profile the check too")
    args = parser.parse_args()
    shell = InteractiveShell.instance()
    print(f"# guard cost per cell when nothing changed, median of {args.cells} cells")
    print(f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for files in args.files:
            print(measure(files, args.cells, Path(tmp), shell, args.profile), flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
