"""``pull``: bring a ``gs://`` object or prefix to local disk, fetching only what differs.

The same contract as Drive's pull (``colab_magics.sync.pull``): a local file with the
object's size and hash is kept (its hash cached by size and mtime), everything else is
downloaded in parallel, verified, and only then given its final name; a run killed half way
is continued by running it again, big objects from where their download stopped.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

from colab_magics.drive.pool import run_each
from colab_magics.gcs.client import GcsClient, GcsObject, open_client
from colab_magics.gcs.download import download
from colab_magics.gcs.errors import aborting, is_fatal
from colab_magics.gcs.hashes import file_hash
from colab_magics.gcs.paths import GsPath, parse_gs, unsafe_reason
from colab_magics.sync import feedback as fb
from colab_magics.sync.errors import SyncError
from colab_magics.sync.local import LocalFile, Md5Cache, ensure_space, restat
from colab_magics.sync.report import SyncReport

_CRC_KEY = "\0crc32c\0"
"""Md5Cache key prefix for crc32c values (no relative path holds a NUL)."""


@dataclasses.dataclass
class ObjectDownload:
    rel: str
    obj: GcsObject
    dest: str


def pull(
    url: str,
    local: str | os.PathLike[str],
    *,
    client: GcsClient | None = None,
    jobs: int = 8,
    progress: Any = None,
    extract: bool = False,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Download ``gs://BUCKET/PATH`` to ``local``.

    ``PATH`` naming an object puts it at ``local`` (inside it when ``local`` is a folder or
    ends with ``/``); otherwise every object below ``PATH/`` lands in the folder ``local``
    under its name relative to ``PATH``. With ``extract``, ``PATH`` is a .zip/.tar(.gz) that
    is fetched to the cache folder and extracted into ``local``
    (:func:`colab_magics.sync.archive.extract`; ``max_size`` in bytes replaces its size limit).
    """
    path = parse_gs(url)
    if extract:
        from colab_magics.gcs.unpack import pull_extract

        return pull_extract(
            path,
            local,
            client=client,
            progress=progress,
            keep_archive=keep_archive,
            cache_dir=cache_dir,
            max_size=max_size,
        )
    target = os.fspath(local)
    report = SyncReport()
    feedback = fb.Feedback(progress)
    action = f"Pull of {path} to {target!r}"
    client = open_client(client)
    with (
        fb.run(report, feedback, client, action=action, where=target),  # type: ignore[arg-type]
        aborting(report, action),
    ):
        feedback.phase("listing")
        single, below = client.find(path)
        if single is not None:
            if target.endswith(os.sep) or os.path.isdir(target):
                target = os.path.join(target, single.name.rsplit("/", 1)[-1])
            top = os.path.dirname(os.path.abspath(target))
            items = [ObjectDownload(os.path.basename(target), single, target)]
        else:
            items = _folder_items(path, below, target, report)
            top = target
        cache = Md5Cache(top, cache_dir)
        try:
            fetch(items, client, cache, jobs, report, feedback, action)
        finally:
            cache.save()
            report.hashed = cache.hashed
    return report


def _folder_items(
    path: GsPath, below: list[GcsObject], target: str, report: SyncReport
) -> list[ObjectDownload]:
    if not below:
        raise SyncError(
            f"{path} matches no object: check the bucket and the path (object names are case "
            "sensitive), and that this account (or anyone, for a public bucket) can read it."
        )
    if os.path.exists(target) and not os.path.isdir(target):
        raise SyncError(f"{path} is a folder of objects but {target!r} is a local file")
    prefix = path.name.rstrip("/") + "/" if path.name.strip("/") else ""
    items = []
    for obj in below:
        rel = obj.name[len(prefix) :]
        if obj.name.endswith("/") and obj.size == 0:
            continue  # a "folder" placeholder made by the console
        why = unsafe_reason(rel)
        if why is not None:
            report.errors[rel or obj.name] = why
            continue
        items.append(ObjectDownload(rel, obj, os.path.join(target, *rel.split("/"))))
    return sorted(items, key=lambda d: d.rel)


def same_as_object(cache: Md5Cache, rel: str, dest: str, obj: GcsObject) -> bool:
    """Is the local file at ``dest`` already ``obj`` (size, then md5 or crc32c)?"""
    try:
        st = os.stat(dest)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not os.path.isfile(dest) or st.st_size != obj.size:
        return False
    here = LocalFile(dest, st.st_size, st.st_mtime_ns)
    if obj.md5:
        return cache.md5(rel, here) == obj.md5
    key = _CRC_KEY + rel
    crc = cache.get(key, here)
    if crc is None:
        crc = file_hash(dest, None, obj.crc32c)
        cache.put(key, here, crc)
    return crc == obj.crc32c


def remember(cache: Md5Cache, rel: str, dest: str, obj: GcsObject) -> None:
    """Record the verified file's hash, so the next run skips it without hashing."""
    now = restat(LocalFile(dest, 0, 0))
    if now is None:
        return
    if obj.md5:
        cache.put(rel, now, obj.md5)
    elif obj.crc32c:
        cache.put(_CRC_KEY + rel, now, obj.crc32c)


def fetch(
    items: list[ObjectDownload],
    client: GcsClient,
    cache: Md5Cache,
    jobs: int,
    report: SyncReport,
    feedback: fb.Feedback,
    action: str,
) -> None:
    """Download what differs of ``items``, ``jobs`` at a time; failures go to the report."""
    missing = sum(d.obj.size for d in items if not _same_size(d))
    ensure_space(items[0].dest if items else ".", missing, action, "nothing was downloaded")
    feedback.phase("downloading")
    progress = feedback.transfer
    progress.set_files(len(items))
    lock = threading.Lock()

    def one(d: ObjectDownload) -> bool:
        if same_as_object(cache, d.rel, d.dest, d.obj):
            progress.file_done(d.rel)
            return False
        if os.path.isdir(d.dest):
            raise SyncError(f"a local folder is in the way of the object {d.obj.url}")
        download(client, d.obj, d.dest, progress=progress)
        remember(cache, d.rel, d.dest, d.obj)
        progress.file_done(d.rel)
        return True

    sizes = {d.rel: d.obj.size for d in items}

    def done(key: str, downloaded: bool) -> None:
        with lock:
            if downloaded:
                report.downloaded += 1
                report.bytes += sizes[key]
            else:
                report.skipped += 1

    def failed(key: str, exc: BaseException) -> None:
        report.errors[key] = str(exc)
        feedback.file_error(key, exc)

    run_each(
        ((d.rel, d) for d in items), one, jobs=jobs, on_result=done, on_error=failed, fatal=is_fatal
    )


def _same_size(d: ObjectDownload) -> bool:
    try:
        return os.path.getsize(d.dest) == d.obj.size
    except OSError:
        return False
