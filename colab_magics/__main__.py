"""``python -m colab_magics demo``: a round trip through the built-in local Drive emulator."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import time

from googleapiclient.http import MediaIoBaseDownload, MediaIoBaseUpload

from colab_magics.drive.service import authorized_http, build_drive_service, token_credentials
from colab_magics.emulator import start_emulator

DEMO_BYTES = 8 * 1024 * 1024


def run_demo(size: int = DEMO_BYTES) -> int:
    """Upload ``size`` random bytes to a fresh emulator, download them back, compare md5s."""
    payload = os.urandom(size)
    sent_md5 = hashlib.md5(payload).hexdigest()
    with (
        tempfile.TemporaryDirectory(prefix="colab_magics-demo-") as root,
        start_emulator(os.path.join(root, "drive")) as emulator,
    ):
        print(f"Local Drive emulator at {emulator.url} (no Google account needed)")
        http = authorized_http(token_credentials(emulator.token))
        drive = build_drive_service(emulator.url, http=http)
        started = time.perf_counter()
        media = MediaIoBaseUpload(
            io.BytesIO(payload), "application/octet-stream", chunksize=1 << 20, resumable=True
        )
        request = drive.files().create(
            body={"name": "demo.bin"}, media_body=media, fields="id,size,md5Checksum"
        )
        created = None
        while created is None:
            _, created = request.next_chunk(num_retries=5)
        uploaded = time.perf_counter()
        buffer = io.BytesIO()
        download = MediaIoBaseDownload(
            buffer, drive.files().get_media(fileId=created["id"]), chunksize=1 << 20
        )
        done = False
        while not done:
            _, done = download.next_chunk(num_retries=5)
        downloaded = time.perf_counter()
    got_md5 = hashlib.md5(buffer.getvalue()).hexdigest()
    mib = size / (1 << 20)
    print(
        f"uploaded {mib:.0f} MiB in {uploaded - started:.2f} s "
        f"(Drive md5 {created['md5Checksum']}, ours {sent_md5})"
    )
    print(f"downloaded {mib:.0f} MiB in {downloaded - uploaded:.2f} s (md5 {got_md5})")
    ok = created["md5Checksum"] == sent_md5 == got_md5
    print("round trip verified" if ok else "MISMATCH: the bytes did not survive the round trip")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colab_magics")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="round trip through the built-in local Drive emulator")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo()
    return 2


if __name__ == "__main__":
    sys.exit(main())
