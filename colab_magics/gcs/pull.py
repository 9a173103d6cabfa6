"""``pull``: bring a ``gs://`` object or prefix to local disk, fetching only what differs.

The same contract as Drive's pull, through the same store-neutral fetch
(:func:`colab_magics.sync.fetch.fetch`): a local file with the object's size and hash is kept
(its hash cached by size and mtime), everything else is downloaded in parallel, verified, and
only then given its final name; a run killed half way is continued by running it again, big
objects from where their download stopped.
"""

from __future__ import annotations

import os

from colab_magics.gcs.client import GcsClient, GcsObject, open_client
from colab_magics.gcs.download import object_download, object_get
from colab_magics.gcs.paths import GsPath, parse_gs, unsafe_reason
from colab_magics.gcs.unpack import pull_extract
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync import feedback as fb
from colab_magics.sync.errors import SyncError
from colab_magics.sync.fetch import Download, fetch
from colab_magics.sync.local import Md5Cache
from colab_magics.sync.report import SyncReport


def pull(
    url: str,
    local: str | os.PathLike[str],
    *,
    client: GcsClient | None = None,
    jobs: int = 8,
    progress: Sink = NO_SINK,
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
    with fb.run(report, feedback, client, action=action, where=target):  # type: ignore[arg-type]
        feedback.phase("listing")
        single, below = client.find(path)
        if single is not None:
            if target.endswith(os.sep) or os.path.isdir(target):
                target = os.path.join(target, single.name.rsplit("/", 1)[-1])
            top = os.path.dirname(os.path.abspath(target))
            items = [object_download(os.path.basename(target), single, target)]
        else:
            items = _folder_items(path, below, target, report)
            top = target
        cache = Md5Cache(top, cache_dir)
        try:
            fetch(items, object_get(client), cache, jobs, report, feedback, action)
        finally:
            cache.save()
            report.hashed = cache.hashed
    return report


def _folder_items(
    path: GsPath, below: list[GcsObject], target: str, report: SyncReport
) -> list[Download]:
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
        items.append(object_download(rel, obj, os.path.join(target, *rel.split("/"))))
    return sorted(items, key=lambda d: d.rel)
