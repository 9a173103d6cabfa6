"""What the Drive guard adds to a cell that names a mount folder, when nothing changed.

A real IPython shell runs the same cell with and without the guard against the emulator and
its simulated mount; the check alone is timed too, with the default view age (1 s) and with
a changes-feed call on every check.

    python bench/guard_cost.py [--files 100 5000] [--cells 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

from colab_magics.drive import DriveClient
from colab_magics.drive.service import token_credentials
from colab_magics.emulator import start_emulator
from colab_magics.emulator.records import NewFile
from colab_magics.sync.guard import Guard, install, uninstall


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(files: int, cells: int, tmp: Path, shell: InteractiveShell) -> str:
    mount = tmp / f"mnt{files}"
    with start_emulator(tmp / f"drive{files}", mount=mount, mount_lag=30) as handle:
        client = DriveClient(handle.url, token_credentials(handle.token), mount_root=str(mount),
                             rate=None)  # fmt: skip
        folder = client.ensure_folder("data")
        for i in range(files):  # straight into the store: setup in seconds, not minutes
            handle.app.store.create(NewFile(name=f"img{i:05}.jpg", parents=[folder.id]), None)
        handle.mount.sync_now()
        data = mount / "data"
        since = time.time() - 60
        guard = Guard(client, mount, since=since)
        eager = Guard(client, mount, max_age=0, since=since)
        guard.check_paths([data])
        eager.check_paths([data])
        check = median_ms(lambda: guard.run([data]), cells)
        check_feed = median_ms(lambda: eager.run([data]), cells)
        cell = f'n = len(__import__("os").listdir("{data}"))'
        bare = median_ms(lambda: shell.run_cell(cell, store_history=False), cells)
        install(shell, guard)
        try:
            before = client.requests
            guarded = median_ms(lambda: shell.run_cell(cell, store_history=False), cells)
            calls = client.requests - before
        finally:
            uninstall(shell)
        client.close()
    return (
        f"{files:6d}-entry folder: check {check:6.2f} ms (changes feed every check "
        f"{check_feed:6.2f} ms) | cell bare {bare:6.2f} ms, guarded {guarded:6.2f} ms "
        f"(+{guarded - bare:.2f} ms) | {calls} Drive calls in {cells} guarded cells"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, nargs="+", default=[100, 5000])
    parser.add_argument("--cells", type=int, default=200)
    args = parser.parse_args()
    shell = InteractiveShell.instance()
    print(f"# guard cost per cell when nothing changed, median of {args.cells} cells")
    with tempfile.TemporaryDirectory() as tmp:
        for files in args.files:
            print(measure(files, args.cells, Path(tmp), shell))


if __name__ == "__main__":
    main()
