"""Where a persist's CPU-heavy pieces run: on the persist thread while it is on time, on a thread
at the training thread's priority once it is late.

A persist runs at nice 10 so that it takes only the CPU training leaves idle. When training
takes every core that can be almost none, and a thread's nice value cannot be lowered again
without CAP_SYS_NICE. So the persist thread hands each heavy piece (hashing and writing a
chunk of a snapshot, the upload) to :func:`run`, and the persister decides per piece: inline
while on time, or on a worker thread that was started at normal priority once it is late.
The persist thread waits for the piece either way, so one persist still does one thing at a
time, in order.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_local = threading.local()


def run(fn: Callable[..., T], *args: Any) -> T:
    """Run a heavy piece of work where the current thread's persist wants it (inline when no
    persist is running on this thread)."""
    runner = getattr(_local, "runner", None)
    return fn(*args) if runner is None else runner(fn, *args)


@contextlib.contextmanager
def heavy_work_through(runner: Callable[..., Any]) -> Iterator[None]:
    """Within the block, :func:`run` on this thread calls ``runner(fn, *args)``."""
    previous = getattr(_local, "runner", None)
    _local.runner = runner
    try:
        yield
    finally:
        _local.runner = previous


class Worker:
    """A thread that runs what it is handed, one call at a time, at the priority of the thread
    that created it (Linux threads inherit their creator's nice value)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self.native_id: int | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this worker; waits for it and returns or raises what it did."""
        done = threading.Event()
        box: dict[str, Any] = {}
        self._jobs.put((fn, args, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["result"]

    def close(self) -> None:
        self._jobs.put(None)

    def _loop(self) -> None:
        self.native_id = threading.get_native_id()
        self._ready.set()
        while (job := self._jobs.get()) is not None:
            fn, args, box, done = job
            try:
                box["result"] = fn(*args)
            except BaseException as exc:  # handed back to the caller, raised there
                box["error"] = exc
            finally:
                done.set()
