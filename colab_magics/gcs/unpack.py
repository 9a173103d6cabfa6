"""``pull(gs://..., extract=True)``: fetch an archive object to the cache folder, extract it.

As for Drive (``colab_magics.sync.unpack``): the archive is kept, named by bucket, object and
generation, until the extraction has finished, so a re-run after a kill neither downloads it
again nor rewrites the entries already extracted; the extraction itself is
:func:`colab_magics.sync.archive.extract`.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from colab_magics.drive.paths import COLAB_MOUNT
from colab_magics.gcs.client import GcsClient, open_client
from colab_magics.gcs.errors import aborting
from colab_magics.gcs.paths import GsPath
from colab_magics.gcs.pull import ObjectDownload, fetch
from colab_magics.sync import feedback as fb
from colab_magics.sync.archive import archive_kind, extract
from colab_magics.sync.errors import SyncError
from colab_magics.sync.local import Md5Cache, default_cache_dir
from colab_magics.sync.report import SyncReport

SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip")


def pull_extract(
    path: GsPath,
    local: str | os.PathLike[str],
    *,
    client: GcsClient | None = None,
    progress: Any = None,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Download the archive object ``path`` and extract it into the local folder ``local``.

    ``max_size`` (bytes) replaces the extraction's size limit, as for Drive's pull.
    """
    target = os.fspath(local)
    real = os.path.realpath(target)
    top = os.path.realpath(COLAB_MOUNT)
    if real == top or real.startswith(top + os.sep):
        raise SyncError(
            f"{target!r} is on the Drive mount: extracting there writes every entry through "
            "the mount, which is what times out half way. Extract to local disk instead."
        )
    suffix = next((s for s in SUFFIXES if path.name.lower().endswith(s)), None)
    if suffix is None or archive_kind(path.name) is None:
        raise SyncError(
            f"{path} is not an archive sync can extract: use .zip, .tar, .tar.gz or .tgz "
            "(or pull it without extract)."
        )
    report = SyncReport()
    feedback = fb.Feedback(progress)
    action = f"Extraction of {path} into {target!r}"
    client = open_client(client)
    with (
        fb.run(report, feedback, client, action=action, where=target),  # type: ignore[arg-type]
        aborting(report, action),
    ):
        obj = client.stat(path.bucket, path.name)
        if obj is None:
            raise SyncError(f"{path} does not exist (object names are case sensitive)")
        folder = os.path.join(cache_dir or default_cache_dir(), "archives")
        os.makedirs(folder, exist_ok=True)
        # Named by object and generation: a changed archive is a different local file.
        key = hashlib.sha256(f"{obj.bucket}/{obj.name}".encode()).hexdigest()[:16]
        name = f"gcs-{key}-{obj.generation}{suffix}"
        archive = os.path.join(folder, name)
        cache = Md5Cache(folder, cache_dir)
        try:
            fetch([ObjectDownload(name, obj, archive)], client, cache, 1, report, feedback, action)
        finally:
            cache.save()
        if not report.ok:
            return report
        report.skipped = 0  # from here on: archive entries, not the archive
        feedback.phase("extracting")
        extract(
            archive,
            target,
            progress=feedback.transfer,
            report=report,
            name=obj.name.rsplit("/", 1)[-1],
            max_size=max_size,
        )
        if not keep_archive:
            os.unlink(archive)
    return report
