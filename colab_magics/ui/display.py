"""What every rendering of a progress model shares: throttling and the words it shows."""

from __future__ import annotations

import sys
import threading
import time

from colab_magics.progress import FAILED, RUNNING, Fields, Progress
from colab_magics.units import format_bytes, format_seconds, plural

MIN_INTERVAL = 0.1
"""Least time between two draws; an update inside it is drawn once it has passed."""
TICK = 1.0
"""While running, a state that shows an age ("12s ago") is drawn again this often."""


def in_notebook() -> bool:
    """True in a Jupyter kernel, where a widget can be displayed.

    Colab's shell (``google.colab._shell.Shell``) and other hosts subclass ipykernel's
    ``ZMQInteractiveShell``, so the class is tested with ``isinstance``, never by name; a shell
    started by a kernel app (tqdm's test) counts too.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    if "IPKernelApp" in getattr(shell, "config", {}):
        return True
    # A kernel's shell class comes from ipykernel.zmqshell, so it is imported already.
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    return zmqshell is not None and isinstance(shell, zmqshell.ZMQInteractiveShell)


def fraction(fields: Fields) -> float | None:
    """How far along, from steps or bytes, whichever the operation reports."""
    for done, total in (
        ("step", "total"),
        ("files_done", "files_total"),
        ("bytes_done", "bytes_total"),
    ):
        if fields.get(total):
            return min(1.0, max(0.0, (fields.get(done) or 0) / fields[total]))
    return None


def status_parts(fields: Fields, now: float | None = None) -> list[str]:
    """Short phrases for the fields present, in the order a reader scans them."""
    now = time.time() if now is None else now
    parts = []
    if fields.get("step") is not None:
        total = f"/{fields['total']}" if fields.get("total") else ""
        parts.append(f"step {fields['step']}{total}")
    if fields.get("steps_per_second"):
        parts.append(f"{fields['steps_per_second']:.1f} steps/s")
    if fields.get("files_total"):
        parts.append(f"{fields.get('files_done', 0)}/{fields['files_total']} files")
    if fields.get("confirmed_step") is not None:
        age = (
            format_seconds(max(0.0, now - fields["confirmed_time"]))
            if fields.get("confirmed_time")
            else "?"
        )
        parts.append(f"confirmed step {fields['confirmed_step']} ({age} ago)")
    elif "confirmed_step" in fields or fields.get("run"):
        parts.append("no confirmed checkpoint yet")
    if fields.get("bytes_total"):
        rate = f" at {format_bytes(fields['rate'])}/s" if fields.get("rate") else ""
        parts.append(
            f"{format_bytes(fields.get('bytes_done'))}/{format_bytes(fields['bytes_total'])}{rate}"
        )
    if fields.get("pushed") is not None:
        parts.append(f"{count(fields['pushed'], 'file')} pushed")
    if fields.get("pending"):
        parts.append(f"{count(fields['pending'], 'file')} pending")
    if fields.get("eta") is not None:
        parts.append(f"ETA {format_seconds(fields['eta'])}")
    if fields.get("retries"):
        parts.append(plural(fields["retries"], "retry", "retries"))
    return parts


def count(n: int, noun: str) -> str:
    """``1 file``, ``3 files``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ticks(fields: Fields) -> bool:
    """Whether the words drawn for ``fields`` change with time alone."""
    return fields.get("state") == RUNNING and bool(fields.get("confirmed_time"))


class Display:
    """Base of the panel and the text line: subscribes, throttles, always draws the last state.

    Updates closer together than :data:`MIN_INTERVAL` are coalesced, not dropped: the newest
    state is drawn once the interval has passed, whether or not another update comes. A
    failure or the end is drawn at once. Nothing is shown before the first update, so an
    operation refused at once (bad input) leaves no empty panel behind; a progress model that
    was updated before the display was made is drawn at once, by the thread that makes it
    (in a notebook: under the cell that started the operation).
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.shown = False
        self._last = 0.0
        self._lock = threading.Lock()  # the schedule: _last, _timer, _closed
        self._draw_lock = threading.RLock()  # one draw at a time, each of the newest state
        self._timer: threading.Timer | None = None
        self._due = 0.0
        self._closed = False
        self._unsubscribe = progress.subscribe(self._on_update)
        if progress.updates:
            self._draw()

    def _on_update(self, progress: Progress) -> None:
        fields = progress.snapshot()
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            urgent = fields.get("state") != RUNNING or fields.get("error")
            wait = self._last + MIN_INTERVAL - now
            if not urgent and wait > 0:
                self._schedule(wait, now)
                return
            self._last = now
        self._draw()

    def _schedule(self, delay: float, now: float) -> None:
        """Draw again after ``delay`` seconds (the earlier of two requests wins); under _lock."""
        if self._timer is not None:
            if self._due <= now + delay:
                return
            self._timer.cancel()
        self._due = now + delay
        self._timer = threading.Timer(delay, self._on_timer)
        self._timer.name = "colab_magics-display"
        self._timer.daemon = True
        self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            if self._closed or self._timer is not threading.current_thread():
                return
            self._timer = None
            self._last = time.monotonic()
        self._draw()

    def _draw(self) -> None:
        with self._draw_lock:
            # Read inside the lock: a draw never replaces a newer state with an older one.
            fields = self.progress.snapshot()
            if self._closed:
                return
            if not self.shown:
                self.shown = True
                self.show()
            self.render(fields)
        if _ticks(fields):
            with self._lock:
                if not self._closed:
                    self._schedule(TICK, time.monotonic())

    def close(self) -> None:
        """Stop following updates and draw the final state (if anything was shown)."""
        self._unsubscribe()
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        with self._draw_lock:
            if self.shown:
                self.render(self.progress.snapshot())
                self.finish()

    def show(self) -> None:
        """Called once, before the first render."""

    def render(self, fields: Fields) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the final render."""

    @staticmethod
    def failed(fields: Fields) -> bool:
        return fields.get("state") == FAILED or bool(fields.get("error"))
