"""What the guard reports: findings, the error that stops a cell, and their one-paragraph text.

Every message names the path, what the mount shows against what Drive holds, and the fix (a
`%drive_sync pull` with its size and an estimated time, `--shard`, `%drive_flush`...).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Sequence

from colab_magics.drive import DriveFile, Quota
from colab_magics.guard.mountview import PendingFile
from colab_magics.units import format_bytes, format_seconds

STOPPING = frozenset({"missing", "partial", "unreadable"})
"""Finding kinds that stop a cell: reading through the mount would see the wrong data."""
PULL_RATE = 50e6  # bytes/s a pull through the API reaches on Colab, for the time estimate
_SHOWN = 3  # names quoted in a message

Children = dict[str, DriveFile]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem with one path (``path`` is ``""`` for account-wide ones such as quota).

    ``kind``: ``missing``, ``partial``, ``unreadable``, ``pending``, ``large`` or ``quota``.
    ``mount_count``/``drive_count``: entries the mount lists and Drive holds, where counted.
    """

    kind: str
    path: str
    message: str
    mount_count: int | None = None
    drive_count: int | None = None
    pending: tuple[PendingFile, ...] = ()

    @property
    def stops(self) -> bool:
        return self.kind in STOPPING

    def __str__(self) -> str:
        return self.message


class GuardError(Exception):
    """The guard stopped a cell before its first line; ``findings`` says why."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        reasons = " Also: ".join(f.message for f in self.findings)
        super().__init__(
            f"The Drive guard stopped this cell before it ran. {reasons} "
            "(To run it anyway: `%drive_guard on --warn` only warns, `%drive_guard off` "
            "turns the guard off.)"
        )


def partial(
    path: str, drive_path: str, shown: int, children: Children, missing: list[str],
    threshold: int,
) -> Finding:  # fmt: skip
    example = ", ".join(repr(n) for n in missing[:_SHOWN])
    more = ", ..." if len(missing) > _SHOWN else ""
    shard = (
        f", or keep folders under {threshold:,} entries with {_shard(drive_path, threshold)}"
        if len(children) > threshold
        else ""
    )
    return Finding(
        "partial",
        path,
        f"{path}: the mount lists {shown:,} entries but Drive holds {len(children):,} "
        f"({len(missing):,} not shown, e.g. {example}{more}), so reading it through the "
        f"mount would silently see part of it. Instead "
        f"{_pull_fix(path, drive_path, children)}{shard}.",
        mount_count=shown,
        drive_count=len(children),
    )


def missing(path: str, drive_path: str, drive: DriveFile, children: Children | None) -> Finding:
    """Drive holds ``drive`` (a folder with ``children``, or a file) but the mount does not."""
    if children is not None:
        what = f"this folder ({len(children):,} entries)"
    else:
        what = f"this file ({format_bytes(drive.size)})"
        children = {drive.name: drive}
    return Finding(
        "missing",
        path,
        f"{path}: Drive holds {what} but the mount does not show it (the mount's listing "
        f"of {os.path.dirname(path)} is partial or has not caught up). Instead "
        f"{_pull_fix(path, drive_path, children)}.",
        mount_count=0,
        drive_count=len(children),
    )


def deleted(path: str) -> Finding:
    # Shown before and gone now while Drive still holds it: most likely deleted through the
    # mount (the delete not synced yet), not hidden by a failed listing.
    return Finding(
        "pending",
        path,
        f"{path}: gone from the mount but still on Drive: a delete the mount has not synced "
        f"yet. `%drive_flush {shlex.quote(os.path.dirname(path))}` waits for it.",
    )


def unreadable(path: str, drive_path: str, exc: OSError, children: Children | None) -> Finding:
    return Finding(
        "unreadable",
        path,
        f"{path}: the mount failed to read it ({exc.__class__.__name__}: {exc}); large "
        f"folders time out on the mount. Instead {_pull_fix(path, drive_path, children)}.",
        drive_count=len(children) if children is not None else None,
    )


def pending(path: str, files: list[PendingFile]) -> Finding:
    shown = "; ".join(f"{os.path.basename(p.mount_path)} {p.why}" for p in files[:_SHOWN])
    shown += "; ..." if len(files) > _SHOWN else ""
    size = format_bytes(sum(p.size for p in files))
    return Finding(
        "pending",
        path,
        f"{path}: {_count(len(files), 'file')} ({size}) written in this runtime not on "
        f"Drive yet ({shown}); they are lost if the runtime ends now. `%drive_flush "
        f"{shlex.quote(path)}` waits for them, `--push` uploads them through the API.",
        pending=tuple(files),
    )


def large(path: str, drive_path: str, shown: int, children: Children, threshold: int) -> Finding:
    fix = _pull_fix(path, drive_path, children)
    return Finding(
        "large",
        path,
        f"{path}: Drive holds {len(children):,} entries in this one folder (the guard's "
        f"threshold is {threshold:,}; reads through the mount are reported to fail past "
        f"~15,000). Shard it into subfolders with {_shard(drive_path, threshold)}, or {fix}.",
        mount_count=shown,
        drive_count=len(children),
    )


def quota(q: Quota) -> Finding:
    assert q.limit
    return Finding(
        "quota",
        "",
        f"Drive is {q.usage / q.limit:.0%} full ({format_bytes(q.usage)} of "
        f"{format_bytes(q.limit)}, {format_bytes(q.usage_in_trash)} of it in the trash): "
        "writes through the mount may never reach Drive. Free space: `%drive_quota "
        "--empty-trash` empties the trash, `%drive_purge PATH` deletes a tree for good.",
    )


def _pull_fix(path: str, drive_path: str, children: Children | None) -> str:
    """The `%drive_sync pull` that copies ``drive_path`` to local disk, with size and time."""
    local = "/content/" + (os.path.basename(path) or "data")
    cmd = f"`%drive_sync pull {shlex.quote(drive_path or '.')} {shlex.quote(local)}`"
    if children is None:
        return f"copy it to local disk through the API: {cmd}"
    files = [f for f in children.values() if not f.is_folder]
    folders = len(children) - len(files)
    size = sum(f.size or 0 for f in files)
    seconds = size / PULL_RATE
    eta = "under a second" if seconds < 1 else "about " + format_seconds(seconds)
    what = (
        format_bytes(size)
        if len(children) == 1 and not folders
        else f"{'at least ' if folders else ''}{_count(len(files), 'file')}, {format_bytes(size)}"
    )
    return (
        f"copy it to local disk through the API and read it from there: {cmd} "
        f"({what}, {eta} at ~50 MB/s)"
    )


def _shard(drive_path: str, threshold: int) -> str:
    return f"`%drive_sync push LOCAL {shlex.quote(drive_path)} --shard {min(1000, threshold)}`"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
