"""Many small files: our parallel push vs one sequential ``files().create`` per file.

The naive way is what a notebook does by hand (seed 004's upload, in a loop). Both write to
the same emulator process; ``--latency`` adds a delay to every request there, to model the
round trip to Drive that the loopback server does not have.

    python bench/small_files.py [--files 10000] [--kib 10] [--latency 0] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process
from googleapiclient.http import MediaFileUpload

from colab_magics.drive import connect
from colab_magics.drive.service import build_drive_service, token_credentials


def make_tree(root: str, files: int, size: int) -> list[str]:
    os.makedirs(root)
    paths = []
    for i in range(files):
        path = os.path.join(root, f"img_{i:06d}.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        paths.append(path)
    return paths


def naive(url: str, paths: list[str]) -> tuple[float, int]:
    drive = build_drive_service(url, credentials=token_credentials(BENCH_TOKEN))
    folder = (
        drive.files()
        .create(
            body={"name": "naive", "mimeType": "application/vnd.google-apps.folder"}, fields="id"
        )
        .execute()["id"]
    )
    started = time.perf_counter()
    for path in paths:
        media = MediaFileUpload(path, "application/octet-stream")
        drive.files().create(
            body={"name": os.path.basename(path), "parents": [folder]},
            media_body=media,
            fields="id,md5Checksum",
        ).execute(num_retries=3)
    return time.perf_counter() - started, len(paths) + 1


def ours(url: str, paths: list[str], workers: int) -> tuple[float, int]:
    client = connect(url=url, token=BENCH_TOKEN, workers=workers)
    try:
        before = client.requests
        started = time.perf_counter()
        outcome = client.upload_many([(p, f"ours/{os.path.basename(p)}") for p in paths])
        seconds = time.perf_counter() - started
        if outcome.errors:
            raise RuntimeError(f"{len(outcome.errors)} uploads failed")
        return seconds, client.requests - before
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--kib", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_tree(os.path.join(tmp, "tree"), args.files, args.kib * 1024)
        with emulator_process("--latency", str(args.latency)) as url:
            base, base_calls = naive(url, paths)
            mine, my_calls = ours(url, paths, args.workers)
    print(
        f"# {args.files} files of {args.kib} KiB, emulator latency {args.latency * 1000:.0f} ms, "
        f"{args.workers} workers"
    )
    print(
        f"naive sequential create {base:7.1f} s ({base_calls} API calls) | ours {mine:7.1f} s "
        f"({my_calls} API calls) | {base / mine:5.1f}x faster"
    )


if __name__ == "__main__":
    main()
