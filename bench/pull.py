"""Pulling from Drive: our parallel, verified pull vs the naive way, same server, same run.

Many small files: ``%drive_sync pull`` vs one sequential ``get_media`` download per file. One
archive: ``pull --extract`` vs downloading it with the client library and then unzipping.
``--latency`` adds a delay to every request at the emulator, to model Drive's round trip.

    python bench/pull.py [--files 10000] [--kib 10] [--archive-mib 1024] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process, set_emulator
from googleapiclient.http import MediaIoBaseDownload

from colab_magics.drive import connect
from colab_magics.drive.service import build_drive_service, token_credentials
from colab_magics.sync import pull


def naive_files(url: str, folder: str, dest: str) -> float:
    """List the folder, then one download per file, one after another."""
    drive = build_drive_service(url, credentials=token_credentials(BENCH_TOKEN))
    started = time.perf_counter()
    folder_id = drive.files().list(q=f"name = '{folder}'", fields="files(id)").execute()
    parent = folder_id["files"][0]["id"]
    token, names = None, []
    while True:
        page = drive.files().list(q=f"'{parent}' in parents", pageSize=1000, pageToken=token,
                                  fields="nextPageToken,files(id,name)").execute()  # fmt: skip
        names += page["files"]
        token = page.get("nextPageToken")
        if not token:
            break
    os.makedirs(dest)
    for f in names:
        with open(os.path.join(dest, f["name"]), "wb") as out:
            out.write(drive.files().get_media(fileId=f["id"]).execute())
    return time.perf_counter() - started


def naive_archive(url: str, file_id: str, dest: str, tmp: str) -> float:
    """Download the archive with the client library, then extract it (seed 000's unzip)."""
    drive = build_drive_service(url, credentials=token_credentials(BENCH_TOKEN))
    started = time.perf_counter()
    path = os.path.join(tmp, "naive.zip")
    with open(path, "wb") as out:
        download = MediaIoBaseDownload(out, drive.files().get_media(fileId=file_id),
                                       chunksize=16 << 20)  # fmt: skip
        done = False
        while not done:
            _, done = download.next_chunk()
    with zipfile.ZipFile(path) as archive:
        archive.extractall(dest)
    return time.perf_counter() - started


def ours(client, drive_path: str, dest: str, *, extract: bool = False) -> float:
    started = time.perf_counter()
    report = pull(drive_path, dest, client=client, extract=extract)
    if report.errors:
        raise RuntimeError(report.summary())
    return time.perf_counter() - started


def make_archive(path: str, mib: int) -> None:
    """A zip of 1 MiB random members (stored: compression would only measure zlib)."""
    block = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(mib):
            archive.writestr(
                f"shard{i // 100:03d}/part{i:05d}.bin", block[i % 7 :] + block[: i % 7]
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--kib", type=int, default=10)
    parser.add_argument("--archive-mib", type=int, default=1024)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as url:
        client = connect(url=url, token=BENCH_TOKEN, workers=16)
        local = os.path.join(tmp, "small")
        os.makedirs(local)
        for i in range(args.files):
            with open(os.path.join(local, f"img_{i:06d}.bin"), "wb") as f:
                f.write(os.urandom(args.kib * 1024))
        client.upload_many([(os.path.join(local, n), f"small/{n}") for n in os.listdir(local)])
        archive = os.path.join(tmp, "data.zip")
        make_archive(archive, args.archive_mib)
        archive_id = client.upload(archive, "data.zip", replace=False).file.id
        set_emulator(url, latency=args.latency)  # setup ran at full speed; now Drive's RTT

        naive_small = naive_files(url, "small", os.path.join(tmp, "n-small"))
        our_small = ours(client, "small", os.path.join(tmp, "o-small"))
        naive_zip = naive_archive(url, archive_id, os.path.join(tmp, "n-zip"), tmp)
        our_zip = ours(client, "data.zip", os.path.join(tmp, "o-zip"), extract=True)
        client.close()
    print(f"# pull, emulator latency {args.latency * 1000:.0f} ms")
    print(
        f"{args.files} files of {args.kib} KiB: naive sequential {naive_small:6.1f} s | "
        f"ours {our_small:6.1f} s | {naive_small / our_small:5.1f}x faster"
    )
    print(
        f"{args.archive_mib} MiB zip: download then unzip {naive_zip:6.1f} s | "
        f"ours (pull --extract, verified) {our_zip:6.1f} s | {naive_zip / our_zip:5.2f}x"
    )


if __name__ == "__main__":
    main()
