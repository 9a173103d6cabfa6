"""``pull(..., extract=True)``: fetch an archive to local disk, then extract it there.

Extracting onto the Drive mount is what timed out half way through a 45 GB dataset, so the
target must be local; the archive is downloaded (verified) into the cache folder, kept there
until the extraction has finished, so a re-run after a kill neither downloads it again nor
rewrites the entries already extracted.
"""

from __future__ import annotations

import os
from typing import Any

from colab_magics.drive import DriveClient
from colab_magics.drive.paths import COLAB_MOUNT, join
from colab_magics.sync import feedback as fb
from colab_magics.sync.archive import archive_kind, extract
from colab_magics.sync.errors import SyncError
from colab_magics.sync.local import Md5Cache, default_cache_dir
from colab_magics.sync.pull import Download, fetch, require
from colab_magics.sync.remote import drive_parts
from colab_magics.sync.report import SyncReport


def pull_extract(
    drive_path: str | os.PathLike[str],
    local: str | os.PathLike[str],
    *,
    client: DriveClient,
    progress: Any = None,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SyncReport:
    """Download the archive ``drive_path`` and extract it into the local folder ``local``."""
    parts = drive_parts(client, drive_path)
    target = os.fspath(local)
    _refuse_mount(client, target)
    report = SyncReport()
    feedback = fb.Feedback(progress)
    action = f"Extraction of drive:{join(parts)} into {target!r}"
    with fb.run(report, feedback, client, action=action, where=target):
        file = require(client, parts)
        if file.is_folder:
            raise SyncError(
                f"drive:{join(parts)} is a folder; extract takes one archive file "
                "(.zip, .tar, .tar.gz, .tgz). Pull the folder without extract instead."
            )
        suffix = _suffix(file.name)
        if suffix is None:
            raise SyncError(
                f"drive:{join(parts)} is not an archive sync can extract: use .zip, .tar, "
                ".tar.gz or .tgz (or pull it without extract)."
            )
        folder = os.path.join(cache_dir or default_cache_dir(), "archives")
        os.makedirs(folder, exist_ok=True)
        # Named by id and md5: a changed archive on Drive is a different local file.
        name = f"{file.id}-{file.md5}{suffix}"
        fetch(
            [Download(name, file, os.path.join(folder, name))],
            client,
            Md5Cache(folder, cache_dir),
            1,
            report,
            feedback,
            action,
        )
        if not report.ok:
            return report
        report.skipped = 0  # from here on: archive entries, not the archive
        feedback.phase("extracting")
        extract(
            os.path.join(folder, name),
            target,
            progress=feedback.transfer,
            report=report,
            name=file.name,
        )
        if not keep_archive:
            os.unlink(os.path.join(folder, name))
    return report


def _suffix(name: str) -> str | None:
    kind = archive_kind(name)
    if kind is None:
        return None
    lower = name.lower()
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if lower.endswith(suffix):
            return suffix
    return None


def _refuse_mount(client: DriveClient, target: str) -> None:
    real = os.path.realpath(target)
    for mount in (client.mount_root, COLAB_MOUNT):
        if not mount:
            continue
        top = os.path.realpath(mount)
        if real == top or real.startswith(top + os.sep):
            raise SyncError(
                f"{target!r} is on the Drive mount: extracting there writes every entry "
                "through the mount, which is what times out half way. Extract to local "
                "disk (e.g. /content/data), or push the extracted folder with sharding."
            )
