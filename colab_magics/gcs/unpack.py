"""``pull(gs://..., extract=True)``: fetch an archive object to the cache folder, extract it.

The flow is Drive's (:func:`colab_magics.sync.unpack.extract_remote`): the archive is kept,
named by bucket, object and generation, until the extraction has finished, so a re-run after a
kill neither downloads it again nor rewrites the entries already extracted, and a re-run after
a finished extraction that is still all there downloads nothing.
"""

from __future__ import annotations

import hashlib
import os

from colab_magics.gcs.client import GcsClient, open_client
from colab_magics.gcs.download import object_download, object_get
from colab_magics.gcs.paths import GsPath
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync.errors import SyncError
from colab_magics.sync.report import SyncReport
from colab_magics.sync.unpack import Archive, extract_remote, refuse_mount, require_archive


def pull_extract(
    path: GsPath,
    local: str | os.PathLike[str],
    *,
    client: GcsClient | None = None,
    progress: Sink = NO_SINK,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Download the archive object ``path`` and extract it into the local folder ``local``.

    ``max_size`` (bytes) replaces the extraction's size limit, as for Drive's pull.
    """
    refuse_mount(os.fspath(local))
    require_archive(path.name, str(path))
    store = open_client(client)

    def find() -> Archive:
        obj = store.stat(path.bucket, path.name)
        if obj is None:
            raise SyncError(f"{path} does not exist (object names are case sensitive)")
        named = hashlib.sha256(f"{obj.bucket}/{obj.name}".encode()).hexdigest()[:16]
        return Archive(object_download("", obj, ""), ("gcs", named, str(obj.generation)), obj.name)

    extracting = {"keep_archive": keep_archive, "cache_dir": cache_dir, "max_size": max_size}
    return extract_remote(find, object_get(store), local, str(path), store, progress, **extracting)
