"""The store-neutral half of a pull: fetch what differs of a list of remote files.

Each item names its local destination, its size and the hash it is verified by (md5, or
crc32c for a bucket's composite objects, which have none); a store supplies only the function
that downloads one item (:data:`Get`: Drive's client, a bucket's ranged download). A local
file with the same size and hash is kept, its hash cached by size and mtime.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any

from colab_magics.drive import Callback
from colab_magics.drive.pool import run_each
from colab_magics.sync import feedback as fb
from colab_magics.sync.errors import is_fatal
from colab_magics.sync.local import LocalFile, Md5Cache, ensure_space, restat
from colab_magics.sync.report import SyncReport

_CRC_KEY = "\0crc32c\0"
"""Md5Cache key prefix for crc32c values (no relative path holds a NUL)."""


@dataclasses.dataclass
class Download:
    """One remote file for :func:`fetch`, from any store: where it goes and what it must be."""

    rel: str
    dest: str
    size: int | None
    md5: str | None
    crc32c: str | None = None
    """Base64, as GCS gives it; checked only where there is no md5 (composite objects)."""
    remote: Any = None
    """What the store's download function takes: a ``DriveFile``, a ``GcsObject``."""


Get = Callable[[Download, Callback], object]
"""Downloads ``item.remote`` to ``item.dest`` (verified), reporting bytes to the callback."""


def same_as_local(cache: Md5Cache, d: Download) -> bool:
    """Is the local file at ``d.dest`` already the remote one (size, then its hash)?"""
    try:
        st = os.stat(d.dest)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not os.path.isfile(d.dest) or st.st_size != d.size:
        return False
    here = LocalFile(d.dest, st.st_size, st.st_mtime_ns)
    if d.md5 or not d.crc32c:
        return cache.md5(d.rel, here) == d.md5
    key = _CRC_KEY + d.rel
    crc = cache.get(key, here)
    if crc is None:
        # Imported here: google_crc32c is needed only for a bucket's composite objects.
        from colab_magics.gcs.hashes import file_hash

        crc = file_hash(d.dest, None, d.crc32c)
        cache.put(key, here, crc)
    return crc == d.crc32c


def remember(cache: Md5Cache, d: Download) -> None:
    """Record the verified file's hash, so the next run skips it without hashing."""
    now = restat(LocalFile(d.dest, 0, 0))
    if now is None:
        return
    if d.md5:
        cache.put(d.rel, now, d.md5)
    elif d.crc32c:
        cache.put(_CRC_KEY + d.rel, now, d.crc32c)


def fetch(
    items: list[Download],
    get: Get,
    cache: Md5Cache,
    jobs: int,
    report: SyncReport,
    feedback: fb.Feedback,
    action: str,
) -> None:
    """Download what differs of ``items`` (size and hash against the local copy), ``jobs``
    at a time, each with ``get(item, progress)``, which writes ``item.dest`` only once its
    bytes are verified; failures go to the report, a fatal one stops the run."""
    missing = sum(d.size or 0 for d in items if not _same_size(d))
    ensure_space(items[0].dest if items else ".", missing, action, "nothing was downloaded")
    feedback.phase("downloading")
    progress = feedback.transfer
    progress.set_files(len(items))
    lock = threading.Lock()

    def one(d: Download) -> bool:
        if same_as_local(cache, d):
            progress.file_done(d.rel)
            return False
        get(d, progress)
        remember(cache, d)
        return True

    sizes = {d.rel: d.size or 0 for d in items}

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


def _same_size(d: Download) -> bool:
    try:
        return os.path.getsize(d.dest) == d.size
    except OSError:
        return False
