"""One big file through our Drive client vs one raw HTTP PUT/GET of the same bytes.

All go to the same emulator process on loopback, so the ratio is what a client costs over the
wire protocol's floor; google-api-python-client's own resumable upload (``library``, in
``--chunk-mib`` chunks) is shown beside ours. Each transfer runs in a fresh child process,
which also gives its peak memory (ru_maxrss).

    python bench/transfer_throughput.py [--mib 1024] [--chunk-mib 8] [--repeat 3] [--only down]
                                        [--link-mib 100 --latency 0.03]

Downloads: ``raw`` is one GET read in 1 MiB blocks, ``raw+hash`` the same hashing each block in
line with the algorithm ours verifies by (what a verified download costs without overlap),
``library`` is ``MediaIoBaseDownload`` (no verification), ``ours`` is ``DriveClient.download``
(verified against the checksum of Drive's this CPU hashes fastest, hashed while receiving).
Uploads: ``raw`` is one resumable session and ONE PUT of the whole file, ``library`` is
``MediaFileUpload(resumable=True)`` and its ``next_chunk`` loop (no verification), ``ours`` is
``DriveClient.upload`` (hashed while sending, compared with Drive's). Seconds are the
transfer's: each method's set-up (imports, building the client) is timed and shown apart.
The load average is printed before and after: on a shared machine it moves every figure.
``--link-mib`` puts a relay that passes at most that many MiB/s between client and emulator,
and ``--latency`` delays each answer at the emulator: a stand-in for Drive's link and round
trip, where loopback is faster than hashing itself.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, emulator_process, make_file, paced_link, set_emulator

from colab_magics.drive.checksum import fastest_first

READ_BLOCK = 1 << 20


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {BENCH_TOKEN}"}


_SET_UP: list[float] = []


def set_up_done() -> None:
    """Marks the end of a method's set-up (imports, building a client): not part of the rate."""
    _SET_UP.append(time.perf_counter())


def raw_upload(url: str, path: str, chunk: int) -> str:
    """Resumable session, then the whole file in ONE PUT: the protocol's floor."""
    size = os.path.getsize(path)
    conn = _connection(url)
    conn.request(
        "POST",
        "/upload/drive/v3/files?uploadType=resumable",
        body=json.dumps({"name": "raw.bin"}),
        headers={
            **_auth(),
            "Content-Type": "application/json",
            "X-Upload-Content-Length": str(size),
        },
    )
    resp = conn.getresponse()
    resp.read()
    location = urllib.parse.urlsplit(resp.getheader("Location"))
    with open(path, "rb") as body:
        conn.request(
            "PUT",
            f"{location.path}?{location.query}",
            body=body,
            headers={
                **_auth(),
                "Content-Length": str(size),
                "Content-Range": f"bytes 0-{size - 1}/{size}",
            },
        )
        resp = conn.getresponse()
        created = json.loads(resp.read())
    return created["id"]


def raw_download(url: str, file_id: str, dest: str, chunk: int) -> None:
    conn = _connection(url)
    conn.request("GET", f"/drive/v3/files/{file_id}?alt=media", headers=_auth())
    resp = conn.getresponse()
    with open(dest, "wb") as out:
        while block := resp.read(READ_BLOCK):
            out.write(block)


def raw_hash_download(url: str, file_id: str, dest: str, chunk: int) -> None:
    """The raw GET plus the hash pass any verified download must make, in line."""
    import hashlib

    digest = hashlib.new(fastest_first()[0])
    set_up_done()
    conn = _connection(url)
    conn.request("GET", f"/drive/v3/files/{file_id}?alt=media", headers=_auth())
    resp = conn.getresponse()
    with open(dest, "wb") as out:
        while block := resp.read(READ_BLOCK):
            digest.update(block)
            out.write(block)


def _service(url: str):
    from colab_magics.drive.service import build_drive_service, token_credentials

    return build_drive_service(url, credentials=token_credentials(BENCH_TOKEN))


def library_upload(url: str, path: str, chunk: int) -> str:
    """google-api-python-client's own resumable upload (what seed 004 does by hand)."""
    from googleapiclient.http import MediaFileUpload

    media = MediaFileUpload(path, "application/octet-stream", chunksize=chunk, resumable=True)
    request = _service(url).files().create(body={"name": "lib.bin"}, media_body=media, fields="id")
    set_up_done()
    created = None
    while created is None:
        _, created = request.next_chunk(num_retries=5)
    return created["id"]


def library_download(url: str, file_id: str, dest: str, chunk: int) -> None:
    from googleapiclient.http import MediaIoBaseDownload

    request = _service(url).files().get_media(fileId=file_id)
    set_up_done()
    with open(dest, "wb") as out:
        download = MediaIoBaseDownload(out, request, chunksize=chunk)
        done = False
        while not done:
            _, done = download.next_chunk(num_retries=5)


def _client(url: str):
    from colab_magics.drive import connect

    return connect(url=url, token=BENCH_TOKEN)


def ours_upload(url: str, path: str, chunk: int) -> str:
    """colab_magics' client: its default request size, checked against Drive's checksum."""
    client = _client(url)
    fastest_first()
    set_up_done()
    try:
        return client.upload(path, "bench/ours.bin", replace=False).file.id
    finally:
        client.close()


def ours_download(url: str, file_id: str, dest: str, chunk: int) -> None:
    client = _client(url)
    fastest_first()  # measured once per process, on first use
    set_up_done()
    try:
        client.download(client.file(file_id), dest)
    finally:
        client.close()


UPLOADS = {"raw": raw_upload, "library": library_upload, "ours": ours_upload}
DOWNLOADS = {
    "raw": raw_download,
    "raw+hash": raw_hash_download,
    "library": library_download,
    "ours": ours_download,
}


def _child(args: argparse.Namespace) -> None:
    """Run one transfer in this (fresh) process and print its seconds and peak memory."""
    started = time.perf_counter()
    if args.direction == "up":
        result = UPLOADS[args.method](args.url, args.path, args.chunk)
    else:
        DOWNLOADS[args.method](args.url, args.file_id, args.path, args.chunk)
        result = None
    ended = time.perf_counter()
    set_up = (_SET_UP[0] - started) if _SET_UP else 0.0
    seconds = ended - started - set_up
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # the client's CPU (the emulator is another process)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "set_up": set_up,
                "cpu": cpu,
                "peak_mib": usage.ru_maxrss / 1024,
                "id": result,
            }
        )
    )


def _run_child(*argv: str) -> dict:
    # The previous transfer's bytes, still being written back to disk, would slow this one.
    os.sync()
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["up", "down"], help="one direction only")
    parser.add_argument("--link-mib", type=float, help="cap the link at this many MiB/s")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--direction", choices=["up", "down"], help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--file-id", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    size = args.mib << 20
    chunk = args.chunk_mib << 20
    with (
        tempfile.TemporaryDirectory(prefix="colab_magics-bench-") as tmp,
        emulator_process() as direct,
        contextlib.ExitStack() as stack,
    ):
        url = stack.enter_context(paced_link(direct, args.link_mib)) if args.link_mib else direct
        if args.latency:
            set_emulator(direct, latency=args.latency)
        source = os.path.join(tmp, "source.bin")
        make_file(source, size)
        print(f"# {args.mib} MiB, chunks of {args.chunk_mib} MiB, median of {args.repeat}")
        if args.link_mib or args.latency:
            cap = f"{args.link_mib:g} MiB/s" if args.link_mib else "uncapped"
            print(f"# link {cap}, {args.latency * 1000:.0f} ms added to each answer")
        print(f"# load average before: {_load()}, {os.cpu_count()} CPUs")
        print(f"# hashes by speed here: {', '.join(fastest_first())}")
        if args.only == "down":  # a file to download, put there by the protocol's floor
            file_id = raw_upload(url, source, chunk)
        for direction, methods in (("up", UPLOADS), ("down", DOWNLOADS)):
            if args.only and direction != args.only:
                continue
            seconds: dict[str, list[float]] = {m: [] for m in methods}
            cpu: dict[str, list[float]] = {m: [] for m in methods}
            set_up: dict[str, list[float]] = {m: [] for m in methods}
            peaks: dict[str, float] = {}
            order = random.Random(0)
            for _ in range(args.repeat):
                # Interleaved, so drift hits every method alike, and in a new order each round:
                # in this VM, writing 1 GiB is cheap or costly by turns (fresh guest pages), and
                # a fixed order would give the costly turns to the same methods every round.
                for method in order.sample(list(methods), len(methods)):
                    if direction == "up":
                        r = _run_child(
                            "--direction",
                            "up",
                            "--method",
                            method,
                            "--url",
                            url,
                            "--path",
                            source,
                            "--chunk",
                            str(chunk),
                        )
                        file_id = r["id"]
                    else:
                        # One path for every method, removed before each run: no download
                        # replaces a file, and each writes where the last one's pages were.
                        dest = os.path.join(tmp, "down.bin")
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(dest)
                        r = _run_child(
                            "--direction",
                            "down",
                            "--method",
                            method,
                            "--url",
                            url,
                            "--file-id",
                            file_id,
                            "--chunk",
                            str(chunk),
                            "--path",
                            dest,
                        )
                    seconds[method].append(r["seconds"])
                    cpu[method].append(r["cpu"])
                    set_up[method].append(r["set_up"])
                    peaks[method] = max(peaks.get(method, 0.0), r["peak_mib"])
            base = statistics.median(seconds["raw"])
            for method in methods:
                med = statistics.median(seconds[method])
                print(
                    f"{direction:4s} {method:8s} {med:7.2f} s  {args.mib / med:7.1f} MiB/s  "
                    f"ratio vs raw {base / med:5.2f}  peak RSS {peaks[method]:6.0f} MiB  "
                    f"client CPU {statistics.median(cpu[method]):5.2f} s  "
                    f"set-up {statistics.median(set_up[method]):4.2f} s (not in the rate)"
                )
            for method in methods:
                runs = " ".join(f"{t:.2f}" for t in seconds[method])
                print(f"#   {direction} {method:8s} each run, in order: {runs} s")
        print(f"# load average after: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
