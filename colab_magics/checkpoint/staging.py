"""Local scratch for snapshots: a private folder per user, and in it one per run.

By default ``<temp dir>/colab_magics-<uid>/NAME`` (``STAGING/NAME`` when the ``staging``
setting or ``$COLAB_MAGICS_STAGING`` names a folder).
The temp dir is shared by every user of the machine, so the per-user folder is made with
mode 0700, and one that is already there is used only if it is a real folder of this user:
never a symlink someone planted for us to write through and ``rmtree``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator

import colab_magics.settings as settings
from colab_magics.settings import STAGING_ENV
from colab_magics.sync.errors import is_disk_full
from colab_magics.units import format_bytes


class StagingRefused(ValueError):
    """The staging folder is not one this user alone controls; the message says why."""


def staging_folder(run: str) -> str:
    """Run ``run``'s staging folder, created if needed (see the module docstring)."""
    chosen = settings.get("staging")
    if chosen:
        base = os.path.abspath(chosen)  # the user's choice, links and all
        os.makedirs(base, mode=0o700, exist_ok=True)
    else:
        base = os.path.join(tempfile.gettempdir(), f"colab_magics-{_user()}")
        _private_folder(base)
    folder = os.path.join(base, run)
    _private_folder(folder)
    return folder


def _user() -> str:
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None:
        return str(geteuid())
    import getpass

    return getpass.getuser()


def _private_folder(path: str) -> None:
    """Make ``path`` with mode 0700, or check that the one there is this user's own folder."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    fix = f"remove it, or set {STAGING_ENV} to a folder of your own"
    if stat.S_ISLNK(info.st_mode):
        raise StagingRefused(f"staging folder {path} is a symbolic link: not followed ({fix})")
    if not stat.S_ISDIR(info.st_mode):
        raise StagingRefused(f"staging folder {path} is not a folder ({fix})")
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and info.st_uid != geteuid():
        raise StagingRefused(f"staging folder {path} belongs to another user ({fix})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)


def clear_leftovers(folder: str) -> None:
    """Remove snapshots a previous process of this run left (killed while staging)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if not (entry.name.startswith("step-") or entry.name == "restore"):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)


@contextlib.contextmanager
def naming_a_full_disk(folder: str) -> Iterator[None]:
    """Turn a full disk inside the block into an error that names ``folder`` and its free
    space (the bare ``[Errno 28]`` names no path)."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        try:
            free = format_bytes(shutil.disk_usage(folder).free)
        except OSError:
            free = "?"
        raise OSError(
            errno.ENOSPC,
            f"no space left for snapshots in {folder} ({free} free): free space on that disk, "
            f"or set {STAGING_ENV} to a folder on a bigger one",
        ) from exc
