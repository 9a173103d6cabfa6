"""Freeing Drive space for real: quota with the trash counted, permanent batched deletes.

Deleting through Drive's web page or the mount moves files to the trash a few hundred at a
time, and the space comes back only once the trash is emptied (seed 000). Here a tree is
deleted permanently, files first in batches of 100, then its folders from the deepest up, so
a kill half way leaves a smaller tree that a second run finishes.
"""

from __future__ import annotations

import dataclasses
import time

from colab_magics.drive import DriveClient, DriveFile, Quota, TransferProgress
from colab_magics.progress import NO_SINK, Sink
from colab_magics.units import format_bytes, plural

BATCH = 100


@dataclasses.dataclass(frozen=True)
class PurgePlan:
    """What deleting ``path`` would remove."""

    path: str
    root: DriveFile
    files: tuple[DriveFile, ...]
    folders: tuple[tuple[int, DriveFile], ...]
    """Folders below the root with their depth, deepest first."""

    @property
    def bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def describe(self) -> str:
        what = "the file" if not self.root.is_folder else (
            f"{plural(len(self.files), 'file')} in {plural(len(self.folders) + 1, 'folder')}"
        )  # fmt: skip
        return f"drive:{self.path}: {what}, {format_bytes(self.bytes)}"


@dataclasses.dataclass
class PurgeReport:
    deleted_files: int = 0
    deleted_folders: int = 0
    bytes: int = 0
    seconds: float = 0.0
    trashed: bool = False


def plan_purge(drive_path: str, *, client: DriveClient) -> PurgePlan:
    """List what ``drive_path`` holds (raises DriveNotFound if it is not there).

    My Drive itself (``""``, ``"."``, ``"drive:"``) is refused with ``ValueError``: purging it
    would delete everything in the Drive.
    """
    if not client.parse(drive_path):
        raise ValueError(
            f"Refusing to purge {drive_path!r}: that is My Drive itself, with everything in it. "
            "Name a folder or file inside it."
        )
    root = client.stat(drive_path)
    if not root.is_folder:
        return PurgePlan(drive_path, root, (root,), ())
    files, folders = [], []
    for rel, file in client.walk(drive_path):
        if file.is_folder:
            folders.append((rel.count("/") + 1, file))
        else:
            files.append(file)
    folders.sort(key=lambda item: -item[0])
    return PurgePlan(drive_path, root, tuple(files), tuple(folders))


def purge(
    plan: PurgePlan, *, client: DriveClient, trash: bool = False, progress: Sink = NO_SINK
) -> PurgeReport:
    """Delete what ``plan`` lists permanently (or, with ``trash``, move its root to the trash).

    ``progress`` (anything with ``update(**fields)``) gets files and bytes done and the rate.
    """
    started = time.monotonic()
    report = PurgeReport(trashed=trash)
    if trash:
        client.trash(plan.root)
        report.deleted_files, report.bytes = len(plan.files), plan.bytes
        report.seconds = time.monotonic() - started
        return report
    transfer = TransferProgress(progress)
    transfer.set_files(len(plan.files) + len(plan.folders) + (1 if plan.root.is_folder else 0))
    transfer.set_size(plan.bytes)
    for start in range(0, len(plan.files), BATCH):
        batch = plan.files[start : start + BATCH]
        client.delete_ids([f.id for f in batch])
        report.deleted_files += len(batch)
        report.bytes += sum(f.size or 0 for f in batch)
        transfer.relative_update(sum(f.size or 0 for f in batch))
        for f in batch:
            transfer.file_done(f.name)
    folders = [f for _, f in plan.folders] + ([plan.root] if plan.root.is_folder else [])
    for start in range(0, len(folders), BATCH):
        batch = folders[start : start + BATCH]
        client.delete_ids([f.id for f in batch])
        report.deleted_folders += len(batch)
        for f in batch:
            transfer.file_done(f.name)
    report.seconds = time.monotonic() - started
    return report


def quota_summary(quota: Quota) -> str:
    """``Drive: 14.2 GB of 15.0 GB used (2.1 GB in the trash: emptying it frees that).``"""
    limit = f"of {format_bytes(quota.limit)} " if quota.limit is not None else ""
    line = f"Drive: {format_bytes(quota.usage)} {limit}used"
    if quota.limit:
        line += f" ({100 * quota.usage / quota.limit:.0f} %)"
    if quota.usage_in_trash:
        line += (
            f"; {format_bytes(quota.usage_in_trash)} of it is in the trash — "
            "emptying the trash frees that (%drive_quota --empty-trash)"
        )
    else:
        line += "; the trash is empty"
    return line + "."
