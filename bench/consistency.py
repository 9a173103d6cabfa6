"""The guard's consistency check at the seed's scale: 340,000 files in 341 folders.

Drive's side is written straight into an emulator store on disk, which an emulator process
then serves (as Drive would be: another machine, not the client's threads); ``--latency``
delays every answer by Drive's round trip. The mount's side is a local folder of the same
names (old mtimes: nothing pending). The first check lists every class folder on Drive once,
``--workers`` at a time, in pages of 1,000; after 10 files change, the re-check follows the
changes feed instead of listing again.

    python bench/consistency.py [--files 340000] [--folders 341] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process, set_emulator

from colab_magics.drive import DriveClient
from colab_magics.drive.service import token_credentials
from colab_magics.emulator.records import NewFile
from colab_magics.emulator.schema import FOLDER_MIME
from colab_magics.emulator.settings import EmulatorSettings
from colab_magics.emulator.store import Store
from colab_magics.guard import Guard
from colab_magics.progress import Progress

AN_HOUR_AGO = time.time() - 3600


def touch(path: Path) -> None:
    path.touch()
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))


def fill(root: Path, mount: Path, files: int, folders: int) -> list[str]:
    """Drive's side into a store at ``root``, the mount's side under ``mount``; the class
    folders' names."""
    store = Store(root, EmulatorSettings())
    try:
        data = store.create(NewFile(name="data", mime_type=FOLDER_MIME), None)
        ids, names = [], [f"c{i:03d}" for i in range(folders)]
        for name in names:
            folder = NewFile(name=name, mime_type=FOLDER_MIME, parents=[data.id])
            ids.append(store.create(folder, None).id)
            (mount / "data" / name).mkdir(parents=True)
        for i in range(files):
            k = i % folders
            store.create(NewFile(name=f"img{i:06d}.jpg", parents=[ids[k]]), None)
            touch(mount / "data" / names[k] / f"img{i:06d}.jpg")
    finally:
        store.close()
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=340_000)
    parser.add_argument("--folders", type=int, default=341)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--workers", type=int, default=16, help="listings at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mount = Path(tmp) / "MyDrive"
        started = time.perf_counter()
        names = fill(Path(tmp) / "drive", mount, args.files, args.folders)
        setup = time.perf_counter() - started
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"# {args.files:,} files in {args.folders} folders (setup {setup:.0f} s)")
        print(f"# {args.latency * 1000:.0f} ms a request, {args.workers} workers, load {load}")
        with emulator_process(root=str(Path(tmp) / "drive")) as url:
            set_emulator(url, latency=args.latency)
            client = DriveClient(url, token_credentials(BENCH_TOKEN), mount_root=str(mount),
                                 rate=None, workers=args.workers)  # fmt: skip
            guard = Guard(client, mount, since=time.time() - 60, max_age=0)
            progress = Progress("Drive guard")
            events: list[float] = []
            progress.subscribe(lambda p: events.append(time.perf_counter()))
            guard.folders.progress = progress
            data = mount / "data"
            before, started = client.requests, time.perf_counter()
            findings = guard.check_paths([data], depth=1)
            first = time.perf_counter() - started
            calls = client.requests - before
            assert not [f for f in findings if f.stops], findings
            print(
                f"first check: {first:6.1f} s, {calls} API calls "
                f"({calls / (args.files / 1000):.2f} per 1,000 files), {len(findings)} findings; "
                f"{len(events)} progress events, the first after {events[0] - started:.1f} s"
            )

            for k in range(10):  # ten new files, on Drive and (synced) on the mount
                name = names[(k * 37) % args.folders]
                client.upload(b"new", f"data/{name}/new{k}.jpg")
                touch(mount / "data" / name / f"new{k}.jpg")
            before, started = client.requests, time.perf_counter()
            findings = guard.check_paths([data], depth=1)
            again = time.perf_counter() - started
            calls = client.requests - before
            print(
                f"re-check after 10 changes: {again:6.2f} s, {calls} API calls (goal <= 2), "
                f"{len([f for f in findings if f.stops])} stopping findings"
            )
            client.close()


if __name__ == "__main__":
    main()
