"""Pre-generated file ids (``files.generateIds``), so a retried create never duplicates.

A create whose answer was lost is retried with the same id: Drive either makes the file
then, or answers that the id is taken — by the file our first attempt made.
"""

from __future__ import annotations

import threading

from colab_magics.drive.errors import DriveError
from colab_magics.drive.transport import Transport


class IdPool:
    """File ids from ``files.generateIds``, so a retried create reuses its id (no duplicates).

    A server without ``generateIds`` (a non-retryable error) turns it off: creates then go
    without a pre-set id.
    """

    def __init__(self, transport: Transport, batch: int = 100) -> None:
        self._t = transport
        self._batch = batch
        self._ids: list[str] = []
        self._lock = threading.Lock()
        self.enabled = True

    def take(self) -> str | None:
        with self._lock:
            if not self.enabled:
                return None
            if not self._ids:
                files = self._t.files
                try:
                    got = self._t.execute(
                        lambda: files.generateIds(count=self._batch, space="drive"),
                        what="generateIds",
                    )
                except DriveError as exc:
                    if exc.status is not None and exc.status in (400, 404, 501):
                        self.enabled = False
                        return None
                    raise
                self._ids = list(got.get("ids", []))
            return self._ids.pop() if self._ids else None
