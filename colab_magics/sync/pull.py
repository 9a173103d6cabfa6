"""``pull``: bring a Drive tree (or one file) to local disk, fetching only what differs.

A local file with Drive's size and md5 is kept (md5s come from the local cache where the file
is unchanged); everything else is downloaded in parallel by the client into a hidden staging
folder of this pull (``colab_magics.drive.staging``: its files can never have the name of a
file being pulled), checked against Drive's md5 and only then renamed to the final name. A pull
killed half way leaves only verified files under final names; the next run skips them and
removes the staging folder the killed one left. The fetch itself is store-neutral
(``colab_magics.sync.fetch``): a bucket's pull uses it too.
"""

from __future__ import annotations

import os

from colab_magics.drive import DriveClient
from colab_magics.drive.paths import join
from colab_magics.drive.staging import Staging, reap
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync import feedback as fb
from colab_magics.sync.drive_items import drive_download, drive_get, require
from colab_magics.sync.errors import SyncError
from colab_magics.sync.fetch import fetch
from colab_magics.sync.local import Md5Cache
from colab_magics.sync.remote import drive_parts, list_tree
from colab_magics.sync.report import SyncReport
from colab_magics.sync.unpack import pull_extract


def pull(
    drive_path: str | os.PathLike[str],
    local: str | os.PathLike[str],
    *,
    client: DriveClient,
    jobs: int = 8,
    progress: Sink = NO_SINK,
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
            report.native = sorted(remote.native)
            report.errors.update(remote.unsafe)
            os.makedirs(target, exist_ok=True)
            blocked = _make_folders(target, sorted(remote.folders), report)
            top = target
            here = {p.split("/", 1)[0] for p in (*remote.files, *remote.folders)}
            items = [
                drive_download(rel, f, os.path.join(target, rel))
                for rel, f in remote.files.items()
                if not any(rel.startswith(b + "/") for b in blocked)
            ]
        else:
            if target.endswith(os.sep) or os.path.isdir(target):
                target = os.path.join(target, root.name)
            top = os.path.dirname(os.path.abspath(target))
            here = {os.path.basename(target)}
            items = [drive_download(os.path.basename(target), root, target)]
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
