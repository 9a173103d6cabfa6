"""The progress model: what a long operation reports, for the ui layer to render.

Core code (checkpoints, sync) only calls :meth:`Progress.update`; whoever displays it — an
ipywidgets panel, a terminal line, a test — subscribes. Nothing here imports a UI library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

RUNNING, DONE, FAILED = "running", "done", "failed"


class Progress:
    """Observable fields of one operation, updated from any thread.

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

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._fields)

    @property
    def state(self) -> str:
        return self.get("state")
