"""The sharded layout: a flat folder of many files kept on Drive as ``000/``, ``001/``...
subfolders of at most N files each, plus an index ``_shards.json`` mapping each original name
to its shard path.

Users report Drive mount reads failing past ~15,000 files in one folder, silently (an empty
listing, an "epoch" over zero images); keeping folders small avoids that. Assignments are
stable: a re-push keeps every file where it is and puts new files in the first shard with room,
so adding files never moves (re-uploads) the others. :func:`sharded` reads the layout back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from colab_magics.drive import DriveClient, DriveNotFound
from colab_magics.drive.paths import join
from colab_magics.progress import Sink
from colab_magics.sync.errors import SyncError
from colab_magics.sync.local import scan
from colab_magics.sync.push_plan import push_tree
from colab_magics.sync.remote import drive_parts
from colab_magics.sync.report import SyncReport

INDEX_NAME = "_shards.json"
FORMAT = "colab_magics.sharded/1"


def assign(names: list[str], shard: int, old: dict[str, Any] | None, keep_missing: bool) -> dict:
    """The index for ``names``: old assignments kept (if the shard size is unchanged), new
    names in the first shard with room. ``keep_missing`` keeps entries of names not given."""
    files: dict[str, str] = {}
    width = max(3, len(str(max(0, (len(names) - 1) // shard))))
    if old and old.get("shard_size") == shard:
        width = int(old.get("width", width))
        wanted = set(names)
        files = {n: p for n, p in old.get("files", {}).items() if keep_missing or n in wanted}
    counts: dict[int, int] = {}
    for path in files.values():
        number = int(path.split("/", 1)[0])
        counts[number] = counts.get(number, 0) + 1
    current = 0
    for name in sorted(names):
        if name in files:
            continue
        while counts.get(current, 0) >= shard:
            current += 1
        files[name] = f"{current:0{width}d}/{name}"
        counts[current] = counts.get(current, 0) + 1
    return {"format": FORMAT, "shard_size": shard, "width": width, "files": files}


def push_sharded(
    local: str | os.PathLike[str],
    drive_path: str | os.PathLike[str],
    *,
    client: DriveClient,
    shard: int,
    delete: bool,
    jobs: int,
    dry_run: bool,
    progress: Sink,
    cache_dir: str | os.PathLike[str] | None,
) -> SyncReport:
    """``push(..., shard=N)``: see the module docstring."""
    if shard < 1:
        raise SyncError(f"shard must be at least 1 file per folder, got {shard}")
    tree = scan(local)
    if not os.path.isdir(local):
        raise SyncError(f"shard lays out a folder of files; {os.fspath(local)!r} is one file.")
    if tree.dirs:
        raise SyncError(
            f"shard lays out a flat folder of files, but {os.fspath(local)!r} has subfolders "
            f"(e.g. {sorted(tree.dirs)[0]!r}); push each subfolder with shard on its own."
        )
    parts = drive_parts(client, drive_path)
    index = assign(sorted(tree.files), shard, _read_index(client, parts), keep_missing=not delete)
    report = push_tree(
        tree,
        parts,
        client=client,
        delete=delete,
        jobs=jobs,
        dry_run=dry_run,
        progress=progress,
        cache_dir=cache_dir,
        action=f"Sharded push of {os.fspath(local)!r} to drive:{join(parts)}",
        drive_names=index["files"],
        keep={INDEX_NAME},
    )
    if dry_run:
        report.plan.append(("upload", INDEX_NAME, 0))
        return report
    failed = set(report.errors)
    index["files"] = {n: p for n, p in index["files"].items() if p not in failed}
    body = json.dumps(index, ensure_ascii=False, indent=0, sort_keys=True).encode()
    client.upload(body, join((*parts, INDEX_NAME)), mime_type="application/json")
    return report


def _read_index(client: DriveClient, parts: tuple[str, ...]) -> dict[str, Any] | None:
    try:
        return _parse(client.read_bytes(join((*parts, INDEX_NAME))), f"drive:{join(parts)}")
    except DriveNotFound:
        return None


def _parse(data: bytes, where: str) -> dict[str, Any]:
    try:
        index = json.loads(data)
    except ValueError as exc:
        raise SyncError(
            f"The shard index {INDEX_NAME} in {where} is not valid JSON: {exc}"
        ) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise SyncError(f"{where}/{INDEX_NAME} is not a shard index written by colab_magics.")
    return index


def sharded(
    path: str | os.PathLike[str], *, client: DriveClient | None = None
) -> Iterator[tuple[str, str]]:
    """``(original name, path)`` for each file of a sharded folder, by name.

    Without ``client``, ``path`` is a local copy (e.g. pulled) and the paths are local; with
    ``client``, ``path`` is the Drive folder and the paths are Drive paths for that client.
    """
    if client is None:
        where = os.fspath(path)
        try:
            with open(os.path.join(where, INDEX_NAME), "rb") as f:
                index = _parse(f.read(), where)
        except FileNotFoundError:
            raise SyncError(_missing(where)) from None
        for name, rel in sorted(index["files"].items()):
            yield name, os.path.join(where, *rel.split("/"))
        return
    parts = drive_parts(client, path)
    index = _read_index(client, parts)
    if index is None:
        raise SyncError(_missing(f"drive:{join(parts)}"))
    for name, rel in sorted(index["files"].items()):
        yield name, join((*parts, *rel.split("/")))


def _missing(where: str) -> str:
    return (
        f"{where} has no {INDEX_NAME}: it is not a sharded folder. Lay it out with "
        "`push(local, drive_path, shard=N)` (`%drive_sync push --shard N`) first."
    )
