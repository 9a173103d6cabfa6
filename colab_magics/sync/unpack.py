"""``pull(..., extract=True)``: fetch an archive to local disk, then extract it there.

Extracting onto the Drive mount is what timed out half way through a 45 GB dataset, so the
target must be local; the archive is downloaded (verified) into the cache folder, kept there
until the extraction has finished, so a re-run after a kill neither downloads it again nor
rewrites the entries already extracted. A finished extraction leaves a record in the cache
folder (what names the archive's content, the target, each entry's size and mtime): a re-run
that finds every entry still as extracted downloads nothing. :func:`extract_remote` is that
flow for an archive from any store; a bucket's pull uses it too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from colab_magics.drive import DriveClient
from colab_magics.drive.paths import COLAB_MOUNT, join
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync import feedback as fb
from colab_magics.sync.archive import Placed, archive_kind, extract_placed
from colab_magics.sync.drive_items import drive_download, drive_get, require
from colab_magics.sync.errors import SyncError
from colab_magics.sync.fetch import Download, Get, fetch
from colab_magics.sync.local import Md5Cache, default_cache_dir, save_json
from colab_magics.sync.remote import drive_parts
from colab_magics.sync.report import SyncReport


@dataclasses.dataclass(frozen=True)
class Archive:
    """An archive in a store, found: what to download, what names its content (an id and
    its hash, an object and its generation), and its own name (its kind)."""

    remote: Download
    key: tuple[str, ...]
    name: str


def pull_extract(
    drive_path: str | os.PathLike[str],
    local: str | os.PathLike[str],
    *,
    client: DriveClient,
    progress: Sink = NO_SINK,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Download the archive ``drive_path`` and extract it into the local folder ``local``
    (``max_size``: see :func:`colab_magics.sync.archive.extract`)."""
    parts = drive_parts(client, drive_path)
    refuse_mount(os.fspath(local), client.mount_root)

    def find() -> Archive:
        file = require(client, parts)
        if file.is_folder:
            raise SyncError(
                f"drive:{join(parts)} is a folder; extract takes one archive file "
                "(.zip, .tar, .tar.gz, .tgz). Pull the folder without extract instead."
            )
        return Archive(drive_download("", file, ""), (file.id, str(file.md5)), file.name)

    options = {"keep_archive": keep_archive, "cache_dir": cache_dir, "max_size": max_size}
    return extract_remote(
        find, drive_get(client), local, f"drive:{join(parts)}", client, progress, **options
    )


def extract_remote(
    find: Callable[[], Archive],
    get: Get,
    local: str | os.PathLike[str],
    label: str,
    client: Any,
    progress: Sink = NO_SINK,
    *,
    keep_archive: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Find the archive (``find()``, in any store), fetch it with ``get`` into the cache
    folder and extract it into ``local``, unless a record says this extraction is done and
    still there. ``label`` is what messages call the archive (``drive:a/b.zip``).

    A changed archive (another ``key``) is a different local file and a different record.
    """
    target = os.fspath(local)
    report = SyncReport()
    feedback = fb.Feedback(progress)
    action = f"Extraction of {label} into {target!r}"
    with fb.run(report, feedback, client, action=action, where=target):
        found = find()
        suffix = require_archive(found.name, label)
        record = _record_path(cache_dir, found.key, target)
        done = _finished(record)
        if done is not None:  # extracted before and still all there: nothing to fetch
            report.skipped = done
            return report
        folder = os.path.join(cache_dir or default_cache_dir(), "archives")
        os.makedirs(folder, exist_ok=True)
        name = "-".join(found.key) + suffix
        archive = dataclasses.replace(found.remote, rel=name, dest=os.path.join(folder, name))
        fetch([archive], get, Md5Cache(folder, cache_dir), 1, report, feedback, action)
        if not report.ok:
            return report
        report.skipped = 0  # from here on: archive entries, not the archive
        feedback.phase("extracting")
        _, placed = extract_placed(
            archive.dest,
            target,
            progress=feedback.transfer.branched(),  # a phase of its own after the fetch
            report=report,
            name=found.name.rsplit("/", 1)[-1],
            max_size=max_size,
        )
        save_json(record, _record(found.key, target, placed))
        if not keep_archive:
            os.unlink(archive.dest)
    return report


def archive_suffix(name: str) -> str | None:
    """The archive suffix of ``name`` (``.tar.gz``, ``.zip``...), None for no archive."""
    kind = archive_kind(name)
    if kind is None:
        return None
    lower = name.lower()
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if lower.endswith(suffix):
            return suffix
    return None


def require_archive(name: str, label: str) -> str:
    """The archive suffix of ``name``, or a :class:`SyncError` about ``label``."""
    suffix = archive_suffix(name)
    if suffix is None:
        raise SyncError(
            f"{label} is not an archive sync can extract: use .zip, .tar, .tar.gz or .tgz "
            "(or pull it without extract)."
        )
    return suffix


def refuse_mount(target: str, *mounts: str | None) -> None:
    """A :class:`SyncError` when ``target`` is on the Drive mount (``mounts``, and Colab's)."""
    real = os.path.realpath(target)
    for mount in (*mounts, COLAB_MOUNT):
        if not mount:
            continue
        top = os.path.realpath(mount)
        if real == top or real.startswith(top + os.sep):
            raise SyncError(
                f"{target!r} is on the Drive mount: extracting there writes every entry "
                "through the mount, which is what times out half way. Extract to local "
                "disk (e.g. /content/data), or push the extracted folder with sharding."
            )


def _record_path(
    cache_dir: str | os.PathLike[str] | None, key: tuple[str, ...], target: str
) -> Path:
    text = "\0".join((*key, os.path.realpath(target))).encode("utf-8", "surrogateescape")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / "extracted" / f"{hashlib.sha256(text).hexdigest()[:24]}.json"


def _record(key: tuple[str, ...], target: str, placed: list[Placed]) -> dict[str, Any]:
    return {
        "key": list(key),
        "target": os.path.realpath(target),
        "entries": [[p.rel, p.kind, p.size, p.mtime_ns, p.target] for p in placed],
    }


def _finished(record: Path) -> int | None:
    """The number of entries if the extraction ``record`` describes is still all on disk
    (files with their size and mtime, links with their target), else None."""
    try:
        data = json.loads(record.read_text())
        top, entries = data["target"], data["entries"]
        for rel, kind, size, mtime_ns, link in entries:
            path = os.path.join(top, rel)
            st = os.lstat(path)
            if kind == "dir":
                ok = stat.S_ISDIR(st.st_mode)
            elif kind == "link":
                ok = stat.S_ISLNK(st.st_mode) and os.readlink(path) == link
            else:
                ok = stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (size, mtime_ns)
            if not ok:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return len(entries)
