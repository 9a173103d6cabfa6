"""The commit protocol over any store: blobs first, the manifest last, restore verifies.

Layout in a run's folder (a Drive folder, a bucket prefix)::

    step-000001200-3f9a1c2e/         the blobs of one checkpoint (torch.pt, values.json, ...)
    manifest-000001200-3f9a1c2e.json  written last: step, time, each blob's id, size and md5

:class:`ManifestStore` writes, restores and prunes checkpoints in that layout; a store
(``drive_store.DriveCheckpointStore``, ``gcs.store.GcsCheckpointStore``) supplies the few
operations below it: list the run's entries, upload a blob or a manifest (each confirmed by
md5), read a manifest, resolve and download a blob a manifest names, delete entries.

Restore takes the newest manifest (by the store's creation time, then step) whose blobs all
verify and that the restore callback accepts, and says which newer ones it skipped and why.
With a lease, manifests are written and old checkpoints pruned only while it holds the run: a
runtime another one took over never adds to or deletes from the run's checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
from typing import Any

from colab_magics.checkpoint.formats import BlobInfo, IntegrityError
from colab_magics.checkpoint.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestBlob,
    ManifestError,
    blobs_with_ids,
    library_versions,
)
from colab_magics.checkpoint.session import RestoreBlobs, Restored
from colab_magics.checkpoint.staging import naming_a_full_disk
from colab_magics.progress import Callback, Progress, TransferProgress

UPLOAD_FIELDS = ("bytes_done", "bytes_total", "rate", "retries")
"""What a checkpoint's upload shows on its progress model (its other fields are the run's)."""

MANIFEST = re.compile(r"^manifest-(\d{9,})-([0-9a-f]{8})\.json$")
BLOBS = re.compile(r"^step-(\d{9,})-([0-9a-f]{8})(?:/([^/]+))?$")
"""A checkpoint's blob folder (``step-…-TAG``) or one blob in it (``step-…-TAG/NAME``)."""


def reason(exc: BaseException) -> str:
    """The first line of why ``exc`` happened, for a "name: why" list."""
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One thing in the run's folder, as the store lists it."""

    name: str
    """Relative to the run's folder: ``manifest-….json``, ``step-…-TAG`` or ``step-…-TAG/x``."""
    created: Any
    """The store's creation time; ordered within one store (Drive's RFC 3339, GCS's float)."""
    key: str
    """The store's id for it; breaks ties in the order."""
    size: int | None
    folder: bool
    ref: Any
    """What the store's operations take (a ``DriveFile``, a ``GcsObject``)."""


class ManifestStore:
    """Commits, lists, restores and prunes the checkpoints of one run; see the module doc.

    Subclasses set ``location`` (``drive:…``, ``gs://…``), ``where`` (for messages: "on
    Drive"), ``errors`` (the store's exceptions a restore skips a checkpoint for) and the
    methods that raise ``NotImplementedError`` here.
    """

    location: str
    where: str
    errors: tuple[type[BaseException], ...]

    def __init__(self, *, run: str, lease: Any = None) -> None:
        self.run = run
        self.lease = lease
        """Set by ``checkpointed()`` once it holds the run: commits and prunes check it."""
        self._skipped: list[str] = []

    # -- what a store supplies ---------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Everything in the run's folder (nothing when it does not exist yet)."""
        raise NotImplementedError

    def put_blob(self, path: str, name: str, blob: BlobInfo, transfer: Callback) -> str:
        """Upload local ``path`` as ``name``, confirmed by ``blob.md5``; the id a manifest
        names it by. It must not replace anything."""
        raise NotImplementedError

    def put_manifest(self, name: str, data: bytes) -> None:
        """Upload the manifest ``data`` as ``name``, confirmed; it must not replace anything."""
        raise NotImplementedError

    def read(self, entry: Entry) -> bytes:
        raise NotImplementedError

    def find_blob(self, blob: ManifestBlob, tag: str) -> tuple[Any, str | None, int | None]:
        """What ``blob.file_id`` names, with its md5 and size; :class:`ManifestError` for an
        id that is not one of this run's blobs of checkpoint ``tag`` (a manifest may come
        from anyone who can write the folder), :class:`IntegrityError` when it is gone."""
        raise NotImplementedError

    def download(self, ref: Any, dest: str) -> None:
        raise NotImplementedError

    def delete(self, entries: list[Entry]) -> None:
        raise NotImplementedError

    def blob_tag(self, entry: Entry) -> str | None:
        """The checkpoint tag of a blob entry (a blob folder on Drive, a blob object in a
        bucket), None for anything else."""
        raise NotImplementedError

    # -- commit ------------------------------------------------------------------------------
    def commit(
        self, folder: str, blobs: list[BlobInfo], *, step: int, created: float, progress: Progress
    ) -> Manifest:
        """Upload ``blobs`` from local ``folder``, then the manifest; each confirmed by md5."""
        if self.lease is not None:
            self.lease.check()  # a runtime taken over uploads nothing more
        tag = secrets.token_hex(4)
        transfer = TransferProgress(
            progress, retries_before=progress.get("retries") or 0, only=UPLOAD_FIELDS
        )
        ids = {}
        for blob in blobs:
            path = os.path.join(folder, blob.name)
            ids[blob.name] = self.put_blob(
                path, f"step-{step:09d}-{tag}/{blob.name}", blob, transfer.branched(blob.name)
            )
        manifest = Manifest(
            run=self.run,
            step=step,
            created=created,
            blobs=blobs_with_ids(blobs, ids),
            versions=library_versions(),
            holder=self.lease.token if self.lease is not None else "",
        )
        if self.lease is not None:
            self.lease.check()
        self.put_manifest(f"manifest-{step:09d}-{tag}.json", manifest.to_json())
        return manifest

    # -- restore -----------------------------------------------------------------------------
    def _newest_first(self, entries: list[Entry]) -> list[tuple[Entry, int, str]]:
        found = []
        for entry in entries:
            match = MANIFEST.match(entry.name)
            if match and not entry.folder:
                found.append((entry, int(match.group(1)), match.group(2)))
        return sorted(found, key=lambda m: (m[0].created, m[1], m[0].key), reverse=True)

    def load_newest(self, staging: str, restore: RestoreBlobs) -> Restored | None:
        """Restore the newest checkpoint whose manifest and blobs all verify and that
        ``restore(local_folder, manifest)`` accepts; None if there is none.

        Each blob is downloaded into ``staging/TAG/`` under its name from the manifest, which
        ``Manifest.from_json`` has checked is one of the snapshot's file names.
        """
        self._skipped = []
        try:
            with naming_a_full_disk(staging):
                for entry, step, tag in self._newest_first(self.entries()):
                    local = os.path.join(staging, tag)
                    try:
                        manifest = self._fetch(entry, step, tag, local)
                        result = restore(local, manifest)
                    except (*self.errors, ManifestError, IntegrityError) as exc:
                        self._skipped.append(f"{entry.name}: {reason(exc)}")
                        continue
                    finally:
                        shutil.rmtree(local, ignore_errors=True)
                    top = self.location.rstrip("/")
                    blobs = f"{top}/step-{step:09d}-{tag}"
                    return Restored(manifest, f"{top}/{entry.name}", blobs, result, self._skipped)
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch(self, entry: Entry, step: int, tag: str, local: str) -> Manifest:
        """The manifest in ``entry``, with its blobs downloaded into ``local``."""
        manifest = self._manifest(entry, step)
        shutil.rmtree(local, ignore_errors=True)
        os.makedirs(local)
        for blob in manifest.blobs:
            ref, md5, size = self.find_blob(blob, tag)
            if md5 != blob.md5 or size != blob.size:
                raise IntegrityError(
                    f"{blob.name} {self.where} has md5 {md5}, the manifest says {blob.md5}"
                )
            self.download(ref, os.path.join(local, blob.name))
        return manifest

    def _manifest(self, entry: Entry, step: int) -> Manifest:
        """The manifest in ``entry``, checked against its name and this run."""
        if entry.size is not None and entry.size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"it is {entry.size} bytes, more than a manifest can be")
        manifest = Manifest.from_json(self.read(entry))
        if manifest.run != self.run:
            raise ManifestError(f"it belongs to run {manifest.run[:100]!r}")
        if manifest.step != step:
            raise ManifestError(f"its name says step {step}, it says step {manifest.step}")
        return manifest

    def skipped_without_restore(self) -> list[str]:
        return list(self._skipped)

    # -- retention ---------------------------------------------------------------------------
    def prune(self, keep: int) -> None:
        """Keep the ``keep`` newest checkpoints; delete older ones and orphaned blobs.

        A manifest goes before its blobs, so a half-done prune never leaves a manifest whose
        blobs are gone. Runs only after a commit is confirmed: the newest is always kept.
        Skipped while the lease is not confirmed: the next commit prunes instead.
        """
        if self.lease is not None and not self.lease.valid():
            return
        entries = self.entries()
        manifests = self._newest_first(entries)
        if not manifests:
            return
        kept_tags = {tag for _, _, tag in manifests[:keep]}
        newest_time = manifests[0][0].created
        doomed = [entry for entry, _, _ in manifests[keep:]]
        if doomed:
            self.delete(doomed)
        # Blobs of no kept manifest: pruned, or left by a commit that never finished (or is
        # still writing). Only those older than the newest confirmed checkpoint are surely dead.
        orphans = [
            entry
            for entry in entries
            if (tag := self.blob_tag(entry)) is not None
            and tag not in kept_tags
            and entry.created < newest_time
        ]
        if orphans:
            self.delete(orphans)
