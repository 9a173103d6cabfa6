"""The guard's consistency check at the seed's scale: 340,000 files in 341 folders.

Drive's side is filled straight into the emulator's store; the mount's side is a local folder
of the same names (old mtimes: nothing pending). The first check lists every folder on Drive
once; after 10 files change, the re-check follows the changes feed instead of listing again.

    python bench/consistency.py [--files 340000] [--folders 341]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from colab_magics.drive import DriveClient
from colab_magics.drive.service import token_credentials
from colab_magics.emulator import start_emulator
from colab_magics.emulator.records import NewFile
from colab_magics.sync.guard import Guard

AN_HOUR_AGO = time.time() - 3600


def touch(path: Path) -> None:
    path.touch()
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=340_000)
    parser.add_argument("--folders", type=int, default=341)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mount = Path(tmp) / "MyDrive"
        with start_emulator(Path(tmp) / "drive") as handle:
            client = DriveClient(handle.url, token_credentials(handle.token),
                                 mount_root=str(mount), rate=None, workers=16)  # fmt: skip
            started = time.perf_counter()
            folders = [client.ensure_folder(f"data/c{i:03d}") for i in range(args.folders)]
            for i in range(args.files):
                folder = folders[i % args.folders]
                handle.app.store.create(NewFile(name=f"img{i:06d}.jpg", parents=[folder.id]), None)
                local = mount / "data" / folder.name
                if i < args.folders:
                    local.mkdir(parents=True)
                touch(local / f"img{i:06d}.jpg")
            setup = time.perf_counter() - started
            print(f"# {args.files:,} files in {args.folders} folders (setup {setup:.0f} s)")

            guard = Guard(client, mount, since=time.time() - 60, max_age=0)
            data = mount / "data"
            before, started = client.requests, time.perf_counter()
            findings = guard.check_paths([data], depth=1)
            first = time.perf_counter() - started
            calls = client.requests - before
            assert not [f for f in findings if f.stops], findings
            print(f"first check: {first:6.1f} s, {calls} API calls, {len(findings)} findings")

            for k in range(10):  # ten new files, on Drive and (synced) on the mount
                folder = folders[(k * 37) % args.folders]
                client.upload(b"new", f"data/{folder.name}/new{k}.jpg")
                touch(mount / "data" / folder.name / f"new{k}.jpg")
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
