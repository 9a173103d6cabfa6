"""``pull``: bring a Drive tree (or one file) to local disk, fetching only what differs.

A local file with Drive's size and md5 is kept (md5s come from the local cache where the file
is unchanged); everything else is downloaded in parallel by the client into a hidden staging
folder of this pull (``colab_magics.drive.staging``: its files can never have the name of a
file being pulled), checked against Drive's md5 and only then renamed to the final name. A pull
killed half way leaves only verified files under final names; the next run skips them and
removes the staging folder the killed one left.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any

from colab_magics.drive import Callback, DriveClient, DriveFile
from colab_magics.drive.paths import join
from colab_magics.drive.pool import run_each
from colab_magics.drive.staging import Staging, reap
from colab_magics.sync import feedback as fb
from colab_magics.sync.errors import SyncError, is_fatal
from colab_magics.sync.local import LocalFile, Md5Cache, ensure_space, restat
from colab_magics.sync.remote import drive_parts, list_tree, lookup
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

    @classmethod
    def drive(cls, rel: str, file: DriveFile, dest: str) -> Download:
        return cls(rel, dest, file.size, file.md5, remote=file)


Get = Callable[[Download, Callback], object]
"""Downloads ``item.remote`` to ``item.dest`` (verified), reporting bytes to the callback."""


def drive_get(client: DriveClient, staging: Staging | None = None) -> Get:
    """The :data:`Get` for Drive files, through the temporary files of ``staging`` (by
    default one staging folder per file)."""

    def get(d: Download, progress: Callback) -> object:
        return client.download(d.remote, d.dest, progress=progress, staging=staging)

    return get


def pull(
    drive_path: str | os.PathLike[str],
    local: str | os.PathLike[str],
    *,
    client: DriveClient,
    jobs: int = 8,
    progress: Any = None,
    extract: bool = False,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Download the Drive folder or file ``drive_path`` to ``local``.

    A folder's contents land in the folder ``local``; a file lands at ``local`` (or inside it
    when ``local`` is a folder or ends with ``/``). With ``extract``, ``drive_path`` is a .zip,
    .tar, .tar.gz or .tgz that is fetched to local disk and extracted into ``local`` (see
    :func:`colab_magics.sync.archive.extract`); ``keep_archive`` keeps the fetched archive.
    ``max_size`` (bytes) is the most the archive may extract to: by default 200 times its own
    size, which refuses a zip bomb; raise it for an archive you trust that compresses more.
    """
    if extract:
        from colab_magics.sync.unpack import pull_extract

        return pull_extract(
            drive_path,
            local,
            client=client,
            progress=progress,
            keep_archive=keep_archive,
            cache_dir=cache_dir,
            max_size=max_size,
        )
    parts = drive_parts(client, drive_path)
    target = os.fspath(local)
    report = SyncReport()
    feedback = fb.Feedback(progress)
    action = f"Pull of drive:{join(parts)} to {target!r}"
    with fb.run(report, feedback, client, action=action, where=target):
        feedback.phase("listing")
        root = require(client, parts)
        if root.is_folder:
            if os.path.exists(target) and not os.path.isdir(target):
                raise SyncError(
                    f"drive:{join(parts)} is a folder but {target!r} is a local file; pull to "
                    "a folder path instead."
                )
            remote = list_tree(client, root)
            report.duplicates = remote.duplicates
            report.errors.update(remote.unsafe)
            os.makedirs(target, exist_ok=True)
            blocked = _make_folders(target, sorted(remote.folders), report)
            top = target
            here = {p.split("/", 1)[0] for p in (*remote.files, *remote.folders)}
            items = [
                Download.drive(rel, f, os.path.join(target, rel))
                for rel, f in remote.files.items()
                if not any(rel.startswith(b + "/") for b in blocked)
            ]
        else:
            if target.endswith(os.sep) or os.path.isdir(target):
                target = os.path.join(target, root.name)
            top = os.path.dirname(os.path.abspath(target))
            here = {os.path.basename(target)}
            items = [Download.drive(os.path.basename(target), root, target)]
        reap(top, keep=here)  # what a killed pull left
        cache = Md5Cache(top, cache_dir)
        try:
            with Staging(top, avoid=here) as staging:
                items.sort(key=lambda d: d.rel)
                get = drive_get(client, staging)
                fetch(items, get, cache, jobs, report, feedback, action)
        finally:
            cache.save()
            report.hashed = cache.hashed
    return report


def _make_folders(target: str, folders: list[str], report: SyncReport) -> list[str]:
    """Create the local folders; one that cannot be made (a file has its name) is an error
    for it and everything below it, which is returned."""
    blocked: list[str] = []
    for rel in folders:
        if any(rel.startswith(b + "/") for b in blocked):
            continue
        try:
            os.makedirs(os.path.join(target, rel), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            report.errors[rel] = f"a local file is in the way of the folder {rel!r}"
            blocked.append(rel)
    return blocked


def require(client: DriveClient, parts: tuple[str, ...]) -> DriveFile:
    found = lookup(client, parts)
    if found is None:
        raise SyncError(
            f"drive:{join(parts)} does not exist on Drive. Paths are relative to My Drive "
            "(or start with the mount, /content/drive/MyDrive/...); check the spelling, and "
            "that this account can see it."
        )
    return found


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
