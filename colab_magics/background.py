"""Background pushes started by ``%drive_sync push --watch``, until ``%drive_sync stop``."""

from __future__ import annotations

import threading

from colab_magics.drive import DriveClient
from colab_magics.progress import Progress
from colab_magics.sync import SyncReport, Watcher

_lock = threading.Lock()
_watchers: dict[tuple[str, str], Watcher] = {}


def start_watch(local: str, drive_path: str, *, client: DriveClient, progress: Progress) -> Watcher:
    """Keep pushing ``local`` to ``drive_path``; watching the same pair twice is refused."""
    key = (local, drive_path)
    with _lock:
        if key in _watchers:
            raise ValueError(f"{local} is already being pushed to drive:{drive_path}")
        watcher = Watcher(local, drive_path, client=client, progress=progress).start()
        _watchers[key] = watcher
    return watcher


def watching() -> list[tuple[str, str]]:
    with _lock:
        return sorted(_watchers)


def stop_watches(*, flush: bool = True) -> dict[tuple[str, str], SyncReport | Exception]:
    """Stop every watch (pushing what is pending when ``flush``); what each one ended with."""
    with _lock:
        watchers = dict(_watchers)
        _watchers.clear()
    outcome: dict[tuple[str, str], SyncReport | Exception] = {}
    for key, watcher in watchers.items():
        try:
            outcome[key] = watcher.stop(flush=flush)
        except Exception as exc:  # reported to the caller, who shows it
            outcome[key] = exc
    return outcome
