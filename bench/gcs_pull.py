"""Pulling from a bucket, and the checkpoint stall with a bucket as the store.

Pull: ``colab_magics.gcs.pull`` vs the naive way, against one gcp-storage-emulator process
(in memory), in the same run. Naive for many objects: list, then one sequential
``download_as_bytes`` per object; for one big object: one single-stream download to a file
(what ``gsutil cp`` does without sliced downloads). ``--latency`` puts a proxy in front of
the emulator that delays every request by that many seconds (GCS's round trip; the emulator
answers at once). Stall: a ``checkpointed`` loop with the
bucket store vs the Drive store (our emulator), same state; the store is behind the persister,
so the two should be equal within noise.

    python bench/gcs_pull.py [--objects 2000] [--kib 10] [--big-mib 1024] [--stall-mib 256]
                             [--latency 0 0.05]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _emulator import BENCH_TOKEN, Relay, emulator_process

BUCKET = "bench-bucket"


@contextmanager
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator in its own process, in memory; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The emulator's HTTPServer keeps socketserver's accept queue of 5: a sixth connection at
    # once has its SYN dropped and retried a second later, a cost GCS's front ends don't have.
    start = (
        "import socketserver; socketserver.TCPServer.request_queue_size = 1024; "
        "from gcp_storage_emulator.__main__ import main; "
        f"main(['start', '--host', '127.0.0.1', '--port', '{port}', '--in-memory', '-q'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", start],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _serve_proxy(port: int, delay: float, urls) -> None:
    """A :class:`Relay` holding back each answer by ``delay`` seconds (the emulator speaks
    HTTP/1.0: one request per connection). The answer is held, not the request: the
    emulator serves one connection at a time, as if the network were slow but the server
    not. The backlog is wide: the emulator's own queues 5 waiting connections."""

    def hold(data: bytes, first: bool) -> None:
        if first:
            time.sleep(delay)

    relay = Relay(("127.0.0.1", port), hold, backlog=1024)
    urls.put(relay.url.rstrip("/"))
    threading.Event().wait()


@contextmanager
def delayed(url: str, delay: float) -> Iterator[str]:
    """``url`` itself, or a delaying :class:`Relay` in front of it in its own process (in this one
    it would take the GIL from the pull it measures)."""
    if delay <= 0:
        yield url
        return
    urls: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(
        target=_serve_proxy, args=(int(url.rsplit(":", 1)[1]), delay, urls), daemon=True
    )
    proc.start()
    try:
        yield urls.get(timeout=30)
    finally:
        proc.terminate()
        proc.join()


def seed(client, objects: int, kib: int, big_mib: int) -> None:
    bucket = client.client.bucket(BUCKET)
    payload = os.urandom(kib << 10)
    for i in range(objects):
        bucket.blob(f"small/{i:05d}.bin").upload_from_string(payload[:-8] + i.to_bytes(8, "big"))
    big = os.urandom(big_mib << 20)
    bucket.blob("big/data.bin").upload_from_string(big)


def naive_small(client, dest: str) -> float:
    started = time.perf_counter()
    os.makedirs(dest)
    bucket = client.client.bucket(BUCKET)
    for listed in client.client.list_blobs(BUCKET, prefix="small/"):
        # By name, not by the listing's mediaLink, which names the emulator, not the proxy.
        with open(os.path.join(dest, listed.name.rsplit("/", 1)[-1]), "wb") as out:
            out.write(bucket.blob(listed.name).download_as_bytes())
    return time.perf_counter() - started


def naive_big(client, dest: str, checksum: str = "auto") -> float:
    started = time.perf_counter()
    client.client.bucket(BUCKET).blob("big/data.bin").download_to_filename(dest, checksum=checksum)
    return time.perf_counter() - started


def ours(client, url: str, dest: str, jobs: int) -> float:
    from colab_magics.gcs import pull

    started = time.perf_counter()
    report = pull(url, dest, client=client, jobs=jobs)
    elapsed = time.perf_counter() - started
    assert report.ok and report.downloaded, report.summary()
    return elapsed


def stall(store, namespace: dict, run: str, count: int) -> list[float]:
    from colab_magics.checkpoint.api import checkpointed

    stalls = []
    with checkpointed(run, save=list(namespace), namespace=namespace, every="1", keep=2,
                      store=store, fresh=True) as ckpt:  # fmt: skip
        steps = ckpt.range(count)
        next(steps)
        for _ in range(count - 1):
            started = time.perf_counter()
            next(steps)
            stalls.append(time.perf_counter() - started)
        ckpt.wait()
    return stalls


def pull_figures(client, gurl: str, tmp: str, args: argparse.Namespace) -> None:
    from colab_magics.gcs import GcsClient

    seed(client, args.objects, args.kib, args.big_mib)
    print(f"# load before: {os.getloadavg()}")
    for latency in args.latency:
        with delayed(gurl, latency) as url:
            near = GcsClient(endpoint=url, anonymous=True)
            slow = naive_small(near, os.path.join(tmp, "n-small"))
            fast = ours(near, f"gs://{BUCKET}/small", os.path.join(tmp, "o-small"), args.jobs)
        print(f"{args.objects} objects of {args.kib} KiB, latency {latency * 1000:.0f} ms: "
              f"naive {slow:.1f} s | ours {fast:.1f} s | {slow / fast:.2f}x")  # fmt: skip
        shutil.rmtree(os.path.join(tmp, "n-small"))
        shutil.rmtree(os.path.join(tmp, "o-small"))
    from colab_magics.gcs.hashes import compiled_crc32c

    verified = "crc32c" if compiled_crc32c() else "md5"
    big = os.path.join(tmp, "big.bin")
    for checksum in ("auto", "md5"):
        slow = naive_big(client, big, checksum)
        os.unlink(big)
        fast = ours(client, f"gs://{BUCKET}/big/data.bin", big, args.jobs)
        os.unlink(big)
        print(f"one {args.big_mib} MiB object: naive (checksum={checksum}) {slow:.1f} s | "
              f"ours {fast:.1f} s ({verified}-verified) | {slow / fast:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--kib", type=int, default=10)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--stall-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stall-only", action="store_true")
    args = parser.parse_args()
    with gcs_emulator() as gurl, tempfile.TemporaryDirectory() as tmp:
        os.environ["STORAGE_EMULATOR_HOST"] = gurl
        from colab_magics.gcs import GcsClient

        client = GcsClient()
        client.client.create_bucket(BUCKET)
        if not args.stall_only:
            pull_figures(client, gurl, tmp, args)

        import numpy as np

        from colab_magics.checkpoint.drive_store import DriveCheckpointStore
        from colab_magics.drive import connect
        from colab_magics.gcs.store import GcsCheckpointStore

        os.environ["COLAB_MAGICS_STAGING"] = os.path.join(tmp, "staging")
        print(f"# load before the stall: {os.getloadavg()}")
        state = {"w": np.random.default_rng(0).random((args.stall_mib << 20) // 8)}
        with emulator_process() as durl:
            drive = connect(url=durl, token=BENCH_TOKEN)
            results: dict[str, list[float]] = {"drive": [], "gs://": []}
            for _ in range(args.rounds):  # alternating, so a change in the machine's load hits both
                for label, store in (
                    ("drive", DriveCheckpointStore(drive, "bench/stall", run="stall")),
                    ("gs://", GcsCheckpointStore(client, f"gs://{BUCKET}/stall", run="stall")),
                ):
                    results[label] += stall(store, state, "stall", args.repeat + 1)
            drive.close()
        for label, values in results.items():
            median, most = statistics.median(values) * 1000, max(values) * 1000
            print(
                f"stall {args.stall_mib} MiB to {label}: median {median:.1f} ms, max {most:.1f} ms"
            )
        ratio = statistics.median(results["gs://"]) / statistics.median(results["drive"])
        print(f"gs:// / drive stall: {ratio:.2f}")
        print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
