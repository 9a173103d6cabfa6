"""Benchmarks' shared helper: an emulator in its own process, as a user would run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

BENCH_TOKEN = "bench-token"


@contextmanager
def emulator_process(
    *extra_args: str, idle: bool = False, root: str | None = None
) -> Iterator[str]:
    """Run ``python -m colab_magics.emulator`` on ``root`` (a temporary one by default); yield
    its base URL.

    ``idle`` runs the server only on CPU time nothing else wants (SCHED_IDLE), for benchmarks
    where it stands in for Google's servers and its CPU use is not the client's cost.
    """
    with tempfile.TemporaryDirectory(prefix="colab_magics-bench-") as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "colab_magics.emulator",
                "--root",
                root or os.path.join(tmp, "d"),
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


class Relay:
    """A loopback TCP relay to ``upstream`` (host, port). ``on_answer(data, first)`` runs before
    each piece of an answer is passed on (``first``: the connection's first piece), so a
    bench can slow answers down without slowing the server. ``url`` is the relay's base URL.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        on_answer: Callable[[bytes, bool], None],
        *,
        backlog: int = 128,
    ) -> None:
        self.upstream, self.on_answer = upstream, on_answer
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for src, dst, answer in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, answer), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answer: bool) -> None:
        try:
            first = True
            while data := src.recv(1 << 18):
                if answer:
                    self.on_answer(data, first)
                    first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def paced_link(url: str, mib_per_s: float) -> Iterator[str]:
    """A :class:`Relay` in front of ``url`` whose downstream bytes pass at most ``mib_per_s``
    (one link shared by every connection, as a network is); yields the relay's base URL.

    Loopback runs at memory speed, where md5 (~0.5 GB/s) is slower than the wire; Drive's
    link is far slower than md5, and this stands in for it.
    """
    parts = urllib.parse.urlsplit(url)
    rate = mib_per_s * (1 << 20)
    lock = threading.Lock()
    clock = {"next": time.monotonic()}  # when the link is free again

    def pace(data: bytes, first: bool) -> None:
        with lock:
            now = time.monotonic()
            start = max(now, clock["next"])
            clock["next"] = start + len(data) / rate
            wait = clock["next"] - now
        if wait > 0:
            time.sleep(wait)

    relay = Relay((parts.hostname, parts.port), pace)
    try:
        yield relay.url
    finally:
        relay.close()
