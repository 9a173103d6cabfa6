"""Persist snapshots in a background thread: one in flight, the newest one queued.

The training loop only ever waits for a snapshot copy. Staging (serializing to local disk) and
uploading happen here. A snapshot's buffers are free again once it is staged, so host memory
for snapshots is two buffer sets (one being staged, one queued) whatever Drive's speed. A
snapshot due while one is still in flight replaces the queued one instead of piling up.

Serializing and hashing run at nice 10, taking the CPU training leaves idle, until the persist
is late: once the next snapshot is waiting for it, or it has run longer than ``patience``
times the time between the last two snapshots. From then on its heavy pieces run at the
training thread's priority (see :mod:`~colab_magics.checkpoint.priority`), so the confirmed
checkpoint does not fall a whole interval behind when training takes every core. The upload
always runs at training's priority: it is mostly waiting on the network, costs little CPU,
and could not be moved to another thread once under way. While a snapshot is being copied the
persist pauses between pieces: the copy, the only stall training feels, has the memory and
the cores to itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from colab_magics.checkpoint import priority
from colab_magics.checkpoint.state import Entry, SnapshotBuffers

Staged = TypeVar("Staged")
Result = TypeVar("Result")


class Snapshot:
    """A captured state waiting to be persisted, in the buffer set it was copied into."""

    def __init__(self, buffers: SnapshotBuffers) -> None:
        self.buffers = buffers
        self.entries: list[Entry] = []
        self.rng: dict[str, Any] = {}
        self.step = 0
        self.created = 0.0


class Persister(Generic[Staged, Result]):
    """Runs ``upload(stage(snapshot))`` in one background thread; see the module docstring.

    ``on_error(exc)`` is called in the background thread when either fails; the failure is
    kept as :attr:`last_error` and the next snapshot tries again. ``patience``: the share of
    the time between snapshots a persist may take at low priority before it is late.
    """

    def __init__(
        self,
        stage: Callable[[Snapshot], Staged],
        upload: Callable[[Staged], Result],
        *,
        on_done: Callable[[Result], None] = lambda result: None,
        on_error: Callable[[BaseException], None] = lambda exc: None,
        name: str = "colab_magics-persist",
        buffers: SnapshotBuffers | None = None,
        patience: float = 0.1,
    ) -> None:
        self._stage = stage
        self._upload = upload
        self._on_done = on_done
        self._on_error = on_error
        self._lock = threading.Condition()
        # ``buffers``: a set already allocated (the restore's rollback copy) to reuse.
        self._free = [Snapshot(buffers or SnapshotBuffers()), Snapshot(SnapshotBuffers())]
        self._queued: Snapshot | None = None
        self._in_flight = False
        self._closed = False
        self.replaced = 0
        self.last_result: Result | None = None
        self.last_error: BaseException | None = None
        self.last_seconds: float | None = None
        self.patience = patience
        self.late_pieces = 0
        """Heavy pieces of work run at normal priority because their persist was late."""
        self._copying = False
        self._started = 0.0  # time.monotonic() when the persist in flight started
        self._last_take: float | None = None
        self._interval: float | None = None  # seconds between the last two snapshots
        # Made here, in the caller's (training) thread, so it runs at training's priority.
        self.worker = priority.Worker(f"{name}-upload")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def warm(self, fill: Callable[[SnapshotBuffers], object]) -> None:
        """Fill every free buffer set once, so no snapshot in the loop allocates memory."""
        with self._lock:
            free = list(self._free)
        for snapshot in free:
            fill(snapshot.buffers)

    def take(
        self,
        fill: Callable[[SnapshotBuffers], tuple[list[Entry], dict[str, Any]]],
        *,
        step: int,
    ) -> None:
        """Copy state now with ``fill(buffers) -> (entries, rng)`` and queue it for persisting."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the persister is closed")
            if self._queued is not None:
                snapshot, self._queued = self._queued, None
                self.replaced += 1
            else:
                snapshot = self._free.pop()
            now = time.monotonic()
            if self._last_take is not None:
                self._interval = now - self._last_take
            self._last_take = now
            self._copying = True
        try:
            snapshot.entries, snapshot.rng = fill(snapshot.buffers)
        except BaseException:
            with self._lock:
                self._free.append(snapshot)
                self._copying = False
                self._lock.notify_all()
            raise
        snapshot.step = step
        snapshot.created = time.time()
        with self._lock:
            self._queued = snapshot
            self._copying = False
            self._lock.notify_all()

    def late(self) -> bool:
        """Whether the persist in flight is late (see the module docstring)."""
        with self._lock:
            return self._late()

    def _late(self) -> bool:
        if not self._in_flight:
            return False
        if self._queued is not None:
            return True  # the next snapshot is waiting for this persist
        interval = self._interval
        return interval is not None and time.monotonic() - self._started > self.patience * interval

    def _heavy(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one heavy piece of the persist in flight, where its lateness says."""
        with self._lock:
            while self._copying:
                self._lock.wait()
            late = self._late()
            if late:
                self.late_pieces += 1
        return self.worker.call(fn, *args) if late else fn(*args)

    def busy(self) -> bool:
        with self._lock:
            return self._queued is not None or self._in_flight

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or in flight; False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._queued is not None or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Finish what is queued, then stop the thread. False if it did not finish in time."""
        finished = self.wait(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=0 if not finished else timeout)
        if finished:
            self.worker.close()
        return finished

    def _run(self) -> None:
        _yield_cpu_to_training()
        while True:
            with self._lock:
                while self._queued is None and not self._closed:
                    self._lock.wait()
                if self._queued is None:
                    return
                snapshot, self._queued = self._queued, None
                self._in_flight = True
                self._started = started = time.monotonic()
            try:
                with priority.heavy_work_through(self._heavy):
                    try:
                        staged = self._stage(snapshot)
                    finally:
                        self._release(snapshot)
                    result = self.worker.call(self._upload, staged)
            except BaseException as exc:  # reported, never kills training
                self.last_error = exc
                self._on_error(exc)
            else:
                self.last_result, self.last_error = result, None
                self.last_seconds = time.monotonic() - started
                self._on_done(result)
            finally:
                with self._lock:
                    self._in_flight = False
                    self._lock.notify_all()

    def _release(self, snapshot: Snapshot) -> None:
        """The snapshot is on local disk: its buffers may take the next one."""
        with self._lock:
            snapshot.entries, snapshot.rng = [], {}
            self._free.append(snapshot)
            self._lock.notify_all()


def _yield_cpu_to_training() -> None:
    """Lower this thread's priority, so persisting takes the CPU that training leaves idle.

    On Linux a thread has its own nice value (set through its thread id), inherited by the
    threads it starts. Elsewhere this does nothing.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
