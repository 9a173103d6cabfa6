"""``push``: make a Drive folder hold what a local tree holds, sending only what differs.

Where a file or a tree lands, sharded or not; the comparing, planning and uploading are
:mod:`colab_magics.sync.push_plan`'s.
"""

from __future__ import annotations

import os

from colab_magics.drive import DriveClient
from colab_magics.drive.paths import join
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync.errors import SyncError
from colab_magics.sync.local import scan
from colab_magics.sync.push_plan import push_tree
from colab_magics.sync.remote import drive_parts, lookup
from colab_magics.sync.report import SyncReport
from colab_magics.sync.shard import push_sharded


def push(
    local: str | os.PathLike[str],
    drive_path: str | os.PathLike[str],
    *,
    client: DriveClient,
    delete: bool = False,
    jobs: int = 8,
    dry_run: bool = False,
    progress: Sink = NO_SINK,
    shard: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SyncReport:
    """Upload ``local`` (a folder's contents, or one file) to ``drive_path``.

    For a file, ``drive_path`` is the Drive file to write, or a folder to put it in when it
    ends with ``/`` or is a folder on Drive. ``delete`` removes (permanently, in batches) Drive
    files and folders under ``drive_path`` that are gone locally. ``dry_run`` lists the plan in
    ``report.plan`` and touches nothing. ``shard=N`` lays a flat folder out in subfolders of at
    most N files plus an index (see :mod:`colab_magics.sync.shard`). ``progress`` is any object
    with ``update(**fields)``. Per-file failures are in ``report.errors``; Drive full,
    unreachable, or refusing the credentials raises :class:`SyncAborted` with the fix.
    """
    if shard is not None:
        return push_sharded(
            local,
            drive_path,
            client=client,
            shard=shard,
            delete=delete,
            jobs=jobs,
            dry_run=dry_run,
            progress=progress,
            cache_dir=cache_dir,
        )
    tree = scan(local)
    parts = drive_parts(client, drive_path)
    names: dict[str, str] = {}
    if not os.path.isdir(local):
        parts = _file_destination(client, os.fspath(drive_path), parts, os.path.basename(local))
        names = {os.path.basename(local): parts[-1]}
        parts = parts[:-1]
    elif delete and not parts:
        raise SyncError(
            "Refusing push with delete to My Drive itself: it would delete everything in your "
            "Drive that is not in the local folder. Push to a folder of My Drive instead."
        )
    return push_tree(
        tree,
        parts,
        client=client,
        delete=delete and not names,
        drive_names=names,
        single=bool(names),
        jobs=jobs,
        dry_run=dry_run,
        progress=progress,
        cache_dir=cache_dir,
        action=f"Push of {os.fspath(local)!r} to drive:{join(parts)}",
    )


def _file_destination(
    client: DriveClient, text: str, parts: tuple[str, ...], name: str
) -> tuple[str, ...]:
    if text.endswith("/") or not parts:
        return (*parts, name)
    found = lookup(client, parts)
    return (*parts, name) if found is not None and found.is_folder else parts
