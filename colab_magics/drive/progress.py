"""Progress callbacks for transfers, in the style of fsspec's callbacks.

Transfer code only calls these methods, on whatever thread it runs; :data:`NO_PROGRESS` is the
default so core code never checks for ``None``. :class:`TransferProgress` counts and computes a
rate, and can forward a snapshot to any object with ``update(**fields)`` (such as
``colab_magics.progress.Progress``), which the ui layer renders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Callback:
    """Does nothing; subclass and override what you need. Methods must be thread-safe."""

    def set_size(self, size: int) -> None:
        """Total bytes expected (added to, when several files share one callback)."""

    def relative_update(self, inc: int) -> None:
        """``inc`` more bytes confirmed (uploaded bytes count once Drive has kept them)."""

    def set_files(self, total: int) -> None:
        """Number of files this operation will move."""

    def file_done(self, name: str = "") -> None:
        """One more file moved and verified."""

    def retry(self, error: BaseException, delay: float) -> None:
        """A call failed and will be tried again after ``delay`` seconds."""

    def error(self, error: BaseException, name: str = "") -> None:
        """A file failed for good."""


NO_PROGRESS = Callback()


class TransferProgress(Callback):
    """Counts bytes, files, retries and errors; ``rate`` is bytes/s over a sliding window.

    With ``sink`` (anything with ``update(**fields)``), every change is forwarded as the fields
    ``bytes_done, bytes_total, files_done, files_total, rate, retries, errors, error``.
    ``min_interval`` limits how often byte updates are forwarded (file and error events always are).
    """

    def __init__(
        self,
        sink: Any = None,
        *,
        min_interval: float = 0.1,
        window: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.bytes_done = 0
        self.bytes_total = 0
        self.files_done = 0
        self.files_total = 0
        self.retries = 0
        self.errors = 0
        self.last_error: str | None = None
        self._clock = clock
        self._window = window
        self._min_interval = min_interval
        self._samples: list[tuple[float, int]] = [(clock(), 0)]
        self._last_push = float("-inf")
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Bytes per second over the last ``window`` seconds."""
        with self._lock:
            return self._rate_locked()

    def _rate_locked(self) -> float:
        t0, b0 = self._samples[0]
        t1, b1 = self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def set_size(self, size: int) -> None:
        with self._lock:
            self.bytes_total += size
        self._push(force=True)

    def relative_update(self, inc: int) -> None:
        with self._lock:
            self.bytes_done += inc
            now = self._clock()
            self._samples.append((now, self.bytes_done))
            while len(self._samples) > 2 and self._samples[0][0] < now - self._window:
                self._samples.pop(0)
        self._push()

    def set_files(self, total: int) -> None:
        with self._lock:
            self.files_total += total
        self._push(force=True)

    def file_done(self, name: str = "") -> None:
        with self._lock:
            self.files_done += 1
        self._push(force=True)

    def retry(self, error: BaseException, delay: float) -> None:
        with self._lock:
            self.retries += 1
        self._push(force=True)

    def error(self, error: BaseException, name: str = "") -> None:
        with self._lock:
            self.errors += 1
            self.last_error = f"{name}: {error}" if name else str(error)
        self._push(force=True)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "bytes_done": self.bytes_done,
                "bytes_total": self.bytes_total,
                "files_done": self.files_done,
                "files_total": self.files_total,
                "rate": self._rate_locked(),
                "retries": self.retries,
                "errors": self.errors,
                "error": self.last_error,
            }

    def _push(self, force: bool = False) -> None:
        if self.sink is None:
            return
        now = self._clock()
        with self._lock:
            if not force and now - self._last_push < self._min_interval:
                return
            self._last_push = now
        self.sink.update(**self.snapshot())
