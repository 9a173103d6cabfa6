"""What every rendering of a progress model shares: throttling and the words it shows."""

from __future__ import annotations

import threading
import time
from typing import Any

from colab_magics.progress import FAILED, RUNNING, Progress
from colab_magics.units import format_bytes, format_seconds

MIN_INTERVAL = 0.1


def in_notebook() -> bool:
    """True in a Jupyter/Colab kernel, where a widget can be displayed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def fraction(fields: dict[str, Any]) -> float | None:
    """How far along, from steps or bytes, whichever the operation reports."""
    for done, total in (
        ("step", "total"),
        ("files_done", "files_total"),
        ("bytes_done", "bytes_total"),
    ):
        if fields.get(total):
            return min(1.0, max(0.0, (fields.get(done) or 0) / fields[total]))
    return None


def status_parts(fields: dict[str, Any], now: float | None = None) -> list[str]:
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
            format_seconds(now - fields["confirmed_time"]) if fields.get("confirmed_time") else "?"
        )
        parts.append(f"confirmed step {fields['confirmed_step']} ({age} ago)")
    elif "confirmed_step" in fields or fields.get("run"):
        parts.append("no confirmed checkpoint yet")
    if fields.get("bytes_total"):
        rate = f" at {format_bytes(fields['rate'])}/s" if fields.get("rate") else ""
        parts.append(
            f"{format_bytes(fields.get('bytes_done'))}/{format_bytes(fields['bytes_total'])}{rate}"
        )
    if fields.get("eta") is not None:
        parts.append(f"ETA {format_seconds(fields['eta'])}")
    if fields.get("retries"):
        parts.append(f"{fields['retries']} retries")
    return parts


class Display:
    """Base of the panel and the text line: subscribes, throttles, always draws the last state.

    Nothing is shown before the first update, so an operation refused at once (bad input)
    leaves no empty panel behind.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.shown = False
        self._last = 0.0
        self._lock = threading.Lock()
        self._unsubscribe = progress.subscribe(self._on_update)

    def _on_update(self, progress: Progress) -> None:
        fields = progress.snapshot()
        now = time.monotonic()
        with self._lock:
            urgent = fields.get("state") != RUNNING or fields.get("error")
            if not urgent and now - self._last < MIN_INTERVAL:
                return
            self._last = now
        self._draw(fields)

    def _draw(self, fields: dict[str, Any]) -> None:
        if not self.shown:
            self.shown = True
            self.show()
        self.render(fields)

    def close(self) -> None:
        """Stop following updates and draw the final state (if anything was shown)."""
        self._unsubscribe()
        if self.shown:
            self.render(self.progress.snapshot())
            self.finish()

    def show(self) -> None:
        """Called once, before the first render."""

    def render(self, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the final render."""

    @staticmethod
    def failed(fields: dict[str, Any]) -> bool:
        return fields.get("state") == FAILED or bool(fields.get("error"))
