"""``--dir``: a folder that a trainer checkpoints into by itself, kept on Drive.

Before the cell, the folder is restored from Drive (a fresh runtime's disk is empty); while
the cell runs, new and changed files are pushed in the background; at the end, what is left
is pushed and verified, so the folder's final state is confirmed on Drive.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from colab_magics.drive import DriveClient
from colab_magics.progress import Progress
from colab_magics.sync import SyncAborted, Watcher, pull


class _WatchFields:
    """What the watcher reports that a checkpoint's progress shows: pending files, errors."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def update(self, **fields: Any) -> None:
        shown = {}
        if "pending" in fields:
            shown["dir_pending"] = fields["pending"]
        if fields.get("error"):
            shown["error"] = f"--dir: {fields['error']}"
        if shown:
            self.progress.update(**shown)


class FolderSync:
    """Restore, watch and confirm one local folder against ``remote`` on Drive."""

    def __init__(
        self,
        local: str,
        remote: str,
        *,
        client: DriveClient,
        progress: Progress,
        interval: float = 5.0,
    ) -> None:
        self.local = local
        self.remote = remote
        self.client = client
        self.progress = progress
        self.interval = interval
        self._watcher: Watcher | None = None
        self._lock = threading.Lock()
        self._fenced = False

    def restore(self) -> int:
        """Bring the folder back from Drive (if it was ever pushed); returns files restored."""
        os.makedirs(self.local, exist_ok=True)
        if not self.client.exists(self.remote):
            return 0
        report = pull(self.remote, self.local, client=self.client)
        if report.downloaded:
            self.progress.update(
                message=f"Restored {report.downloaded} files of {self.local} from "
                f"drive:{self.remote}"
            )
        return report.downloaded

    def start(self) -> None:
        with self._lock:
            if self._fenced:
                return
            self._watcher = Watcher(
                self.local,
                self.remote,
                client=self.client,
                interval=self.interval,
                progress=_WatchFields(self.progress),
            ).start()

    def stop_pushing(self) -> None:
        """Another runtime took the run over: push nothing more (its files win on Drive)."""
        with self._lock:
            self._fenced = True
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop(flush=False)

    def finish(self) -> bool:
        """Push what is left and verify it; False (with the error shown) if it did not all go."""
        with self._lock:
            watcher, self._watcher = self._watcher, None
            if self._fenced:
                return False
        if watcher is None:
            return True
        try:
            watcher.stop(flush=True)
        except SyncAborted as exc:
            self.progress.update(error=f"--dir: {exc}")
            return False
        self.progress.update(dir_pending=0)
        return True
