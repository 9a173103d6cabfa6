"""The progress contract: what a long operation reports, for the ui layer to render.

Modelled on fsspec's callbacks. Transfer code only calls :class:`Callback` methods
(``set_size``, ``relative_update``, ``branched``...); :data:`NO_PROGRESS` is the default, so core
code never checks for ``None``. :class:`TransferProgress` counts bytes and files, computes the
rate and the ETA, and forwards them to a sink: anything with ``update(**fields)``, normally a
:class:`Progress` model, which the ui subscribes to. :data:`NO_SINK` is the do-nothing sink.

The names of the fields a model carries are declared once, in :class:`Fields`; writers and the
ui use those names. Nothing here imports a UI library or another part of the package.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypedDict

RUNNING, DONE, FAILED = "running", "done", "failed"


class Fields(TypedDict, total=False):
    """Every field a progress model may carry; the ui renders those present."""

    state: str
    """``running``, ``done`` or ``failed``."""
    error: str | None
    """The last error; it may be set while still running (a failure the next try retries)."""
    message: str | None
    """A line for the reader: the phase, a summary, what is being waited for."""
    phase: str
    summary: str
    run: str
    cadence: str
    step: int
    total: int | None
    """The step the training loop stops at, when known."""
    steps_per_second: float
    confirmed_step: int | None
    """The newest step whose checkpoint Drive has confirmed."""
    confirmed_time: float | None
    files_done: int
    files_total: int
    files_pending: int
    files_listed: int
    folders_done: int
    folders_total: int
    dir_pending: int
    bytes_done: int
    bytes_total: int
    rate: float
    """Bytes per second over the last few seconds."""
    eta: float | None
    """Seconds left at the current rate."""
    retries: int
    errors: int
    pushed: int
    pending: int


FIELDS = frozenset(Fields.__annotations__)
"""The declared field names."""


class Sink(Protocol):
    """What a :class:`TransferProgress` forwards to: a :class:`Progress`, or anything alike."""

    def update(self, **fields: Any) -> None: ...


class NullSink:
    """A sink that keeps nothing: the default where an operation reports to no one."""

    def update(self, **fields: Any) -> None:
        pass

    def get(self, name: str, default: Any = None) -> Any:
        return default


NO_SINK = NullSink()


class Progress:
    """Observable fields (see :class:`Fields`) of one operation, updated from any thread.

    ``state`` is ``running``, ``done`` or ``failed``; ``error`` holds the last error message
    (it may be set while still running: a failed upload that the next attempt will retry).
    """

    def __init__(self, title: str, **fields: Any) -> None:
        self.title = title
        self._fields: dict[str, Any] = {"state": RUNNING, "error": None, **fields}
        self._listeners: list[Callable[[Progress], None]] = []
        self._lock = threading.Lock()
        self.updates = 0
        """How many updates there were: a display made after the first draws at once."""

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._fields.update(fields)
            self.updates += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(self)

    def subscribe(self, listener: Callable[[Progress], None]) -> Callable[[], None]:
        """Call ``listener(progress)`` after every update; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def get(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._fields.get(name, default)

    def snapshot(self) -> Fields:
        with self._lock:
            return dict(self._fields)  # type: ignore[return-value]

    @property
    def state(self) -> str:
        return self.get("state")


class Callback:
    """Does nothing; subclass and override what you need. Methods must be thread-safe."""

    def set_size(self, size: int) -> None:
        """Total bytes this callback's transfer will move (replaces any earlier size)."""

    def relative_update(self, inc: int) -> None:
        """``inc`` more bytes confirmed (uploaded bytes count once Drive has kept them)."""

    def set_files(self, total: int) -> None:
        """Number of files this operation will move (replaces any earlier number)."""

    def file_done(self, name: str = "") -> None:
        """One more file moved and verified."""

    def retry(self, error: BaseException, delay: float) -> None:
        """A call failed and will be tried again after ``delay`` seconds."""

    def error(self, error: BaseException, name: str = "") -> None:
        """A file failed for good."""

    def branched(self, name: str = "") -> Callback:
        """A callback for one file of this operation: its size and bytes count into this one."""
        return self


NO_PROGRESS = Callback()


class TransferProgress(Callback):
    """Counts bytes, files, retries and errors; ``rate`` is bytes/s over a sliding window and
    ``eta`` the seconds left at that rate.

    Every change is forwarded to ``sink`` as the fields ``bytes_done, bytes_total, files_done,
    files_total, rate, eta, retries, errors, error``, plus ``retries_before`` added to
    ``retries`` (a model that counted retries before this transfer keeps counting on).
    ``only`` narrows what is forwarded to those fields (a model whose other fields say something
    else). ``min_interval`` limits how often byte updates are forwarded (file and error events
    always are). Per-file transfers report through :meth:`branched`.
    """

    def __init__(
        self,
        sink: Sink = NO_SINK,
        *,
        min_interval: float = 0.1,
        window: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        retries_before: int = 0,
        only: tuple[str, ...] | None = None,
    ) -> None:
        self.sink = sink
        self._only = only
        self.bytes_done = 0
        self.bytes_total = 0
        self.files_done = 0
        self.files_total = 0
        self.retries = 0
        self.errors = 0
        self.last_error: str | None = None
        self._retries_before = retries_before
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
            self.bytes_total = size
        self._push(force=True)

    def _add(self, bytes_total: int = 0, files_total: int = 0) -> None:
        with self._lock:
            self.bytes_total += bytes_total
            self.files_total += files_total
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
            self.files_total = total
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

    def branched(self, name: str = "") -> Callback:
        return _Branch(self)

    def snapshot(self) -> Fields:
        with self._lock:
            rate = self._rate_locked()
            left = self.bytes_total - self.bytes_done
            return {
                "bytes_done": self.bytes_done,
                "bytes_total": self.bytes_total,
                "files_done": self.files_done,
                "files_total": self.files_total,
                "rate": rate,
                "eta": left / rate if rate and left > 0 else None,
                "retries": self._retries_before + self.retries,
                "errors": self.errors,
                "error": self.last_error,
            }

    def _push(self, force: bool = False) -> None:
        if self.sink is NO_SINK:
            return
        now = self._clock()
        with self._lock:
            if not force and now - self._last_push < self._min_interval:
                return
            self._last_push = now
        fields = self.snapshot()
        if self._only is not None:
            fields = {k: fields[k] for k in self._only}  # type: ignore[literal-required,assignment]
        self.sink.update(**fields)


class _Branch(Callback):
    """One part of a :class:`TransferProgress` (a file, a phase): ``set_size`` and ``set_files``
    set this part's numbers, and the parent's totals change by the difference; the counts it
    reports are the parent's."""

    def __init__(self, parent: TransferProgress) -> None:
        self.parent = parent
        self.size = 0
        self.files = 0

    def set_size(self, size: int) -> None:
        inc, self.size = size - self.size, size
        self.parent._add(bytes_total=inc)

    def set_files(self, total: int) -> None:
        inc, self.files = total - self.files, total
        self.parent._add(files_total=inc)

    def relative_update(self, inc: int) -> None:
        self.parent.relative_update(inc)

    def file_done(self, name: str = "") -> None:
        self.parent.file_done(name)

    def retry(self, error: BaseException, delay: float) -> None:
        self.parent.retry(error, delay)

    def error(self, error: BaseException, name: str = "") -> None:
        self.parent.error(error, name)

    def branched(self, name: str = "") -> Callback:
        return _Branch(self.parent)
