"""Temporary files for downloads, in a hidden folder whose name no file being written can take.

Any name can exist on Drive, ``x.part`` included, so a download must not stage ``x`` under a
name derived from it: a folder holding both ``x`` and ``x.part`` would have one written over the
other. Temporaries live instead in a folder made for one operation, ``.colab_magics-staging-``
plus 16 random hex digits, inside the destination (same file system, so moving a file out of
it is an atomic rename). It is made with ``mkdir`` (which fails if the name exists), its name
is never one of the Drive names the operation writes there (``avoid``), and each file in it is
created ``O_EXCL|O_NOFOLLOW`` under a counter name.

While in use the folder holds a lock (``flock`` on its ``.lock`` file). A folder left by a
killed process has a free lock: :func:`reap` removes it, and :func:`is_staging` lets a push or
a scan skip it, so temporaries never travel to Drive.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import threading
from collections.abc import Collection
from typing import IO

try:
    import fcntl
except ImportError:  # no flock (Windows): nothing is ever taken for stale
    fcntl = None  # type: ignore[assignment]

PREFIX = ".colab_magics-staging-"
LOCK = ".lock"
_NAME = re.compile(r"\.colab_magics-staging-[0-9a-f]{16}\Z")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_CREATE |= getattr(os, "O_CLOEXEC", 0)


class Staging:
    """A private folder inside ``parent`` for one operation's temporary files.

    Use as a context manager (or call :meth:`close`): the folder and whatever is left in it
    are removed at the end. ``avoid`` holds names the operation itself writes in ``parent``.
    Safe to use from several threads.
    """

    def __init__(self, parent: str | os.PathLike[str], *, avoid: Collection[str] = ()) -> None:
        parent = os.fspath(parent) or "."
        os.makedirs(parent, exist_ok=True)
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        for _ in range(64):
            name = PREFIX + secrets.token_hex(8)
            if name in avoid:
                continue
            path = os.path.join(parent, name)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            try:
                self._lock_fd = _take_lock(path)
            except FileNotFoundError:  # reaped as empty by another process before the lock
                continue
            self.path = path
            return
        raise FileExistsError(f"could not make a staging folder in {parent!r}")

    def create(self) -> tuple[str, IO[bytes]]:
        """A new empty file in the folder: its path, and it open for writing."""
        while True:
            with self._lock:
                name = str(next(self._counter))
            path = os.path.join(self.path, name)
            try:
                fd = os.open(path, _CREATE, 0o600)
            except FileExistsError:  # not ours: never write through it
                continue
            return path, os.fdopen(fd, "wb")

    def close(self) -> None:
        """Remove the folder and everything left in it."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_staging(path: str | os.PathLike[str]) -> bool:
    """Is ``path`` a staging folder (ours, in use or left by a killed process)?"""
    path = os.fspath(path)
    if not _NAME.match(os.path.basename(path)):
        return False
    return os.path.isfile(os.path.join(path, LOCK)) and not os.path.islink(path)


def reap(parent: str | os.PathLike[str], *, keep: Collection[str] = ()) -> int:
    """Remove the staging folders in ``parent`` that no live process holds; returns how many.

    ``keep``: names to leave alone whatever they hold (the Drive names being written there).
    """
    removed = 0
    try:
        entries = [e for e in os.scandir(parent) if _NAME.match(e.name) and e.name not in keep]
    except OSError:
        return 0
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and _stale(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _take_lock(folder: str) -> int:
    fd = os.open(os.path.join(folder, LOCK), _CREATE, 0o600)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _stale(folder: str) -> bool:
    if fcntl is None:
        return False
    try:
        fd = os.open(os.path.join(folder, LOCK), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        # Made but never locked (killed in between): remove it only if it is empty.
        try:
            os.rmdir(folder)
        except OSError:
            pass
        return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held by a live operation
    finally:
        os.close(fd)
    return True
