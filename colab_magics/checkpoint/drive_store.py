"""Checkpoints on Drive: blobs first, the manifest last, nothing counted until Drive confirms.

Layout in the run's folder (``colab_magics/checkpoints/NAME`` by default)::

    step-000001200-3f9a1c2e/         the blobs of one checkpoint (torch.pt, values.json, ...)
    manifest-000001200-3f9a1c2e.json  written last: step, time, each blob's id, size and md5

Drive names are not unique, so nothing is found by name alone: a manifest names its blobs by
file id and md5. Restore takes the newest manifest (by Drive's createdTime) whose blobs all
verify, and says which ones it skipped and why.

With a lease (``lease.py``) the store writes manifests and prunes only while it holds the
run: a runtime another one took over never adds to or deletes from the run's checkpoints.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from typing import Any

from colab_magics.checkpoint.formats import BlobInfo, IntegrityError
from colab_magics.checkpoint.lease import Lease
from colab_magics.checkpoint.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    blobs_with_ids,
    library_versions,
)
from colab_magics.checkpoint.session import RestoreBlobs, Restored
from colab_magics.checkpoint.staging import naming_a_full_disk
from colab_magics.drive import DriveClient, DriveError, DriveFile, DriveNotFound, TransferProgress
from colab_magics.progress import Progress

_MANIFEST = re.compile(r"^manifest-(\d{9,})-([0-9a-f]{8})\.json$")
_BLOBS = re.compile(r"^step-(\d{9,})-([0-9a-f]{8})$")
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class _UploadFields:
    """Forwards a transfer's bytes, rate and retries to the checkpoint's progress model."""

    def __init__(self, progress: Progress, retries_before: int) -> None:
        self.progress = progress
        self.retries_before = retries_before

    def update(self, **fields: Any) -> None:
        self.progress.update(
            bytes_done=fields["bytes_done"],
            bytes_total=fields["bytes_total"],
            rate=fields["rate"],
            retries=self.retries_before + fields["retries"],
        )


def _newest_first(files: list[DriveFile]) -> list[tuple[DriveFile, int, str]]:
    found = []
    for file in files:
        match = _MANIFEST.match(file.name)
        if match and not file.is_folder:
            found.append((file, int(match.group(1)), match.group(2)))
    return sorted(found, key=lambda m: (m[0].created_time, m[1], m[0].id), reverse=True)


class DriveCheckpointStore:
    """Commits, lists, restores and prunes the checkpoints of one run in one Drive folder."""

    def __init__(
        self, client: DriveClient, folder: str, *, run: str, lease: Lease | None = None
    ) -> None:
        self.client = client
        self.folder = folder
        self.run = run
        self.lease = lease
        """Set by ``checkpointed()`` once it holds the run: commits and prunes check it."""
        self.location = f"drive:{folder}"
        self._skipped: list[str] = []

    @classmethod
    def for_current_client(cls, folder: str, *, run: str) -> DriveCheckpointStore:
        from colab_magics.connection import current_client

        return cls(current_client(), folder, run=run)

    # -- commit ------------------------------------------------------------------------------
    def commit(
        self, folder: str, blobs: list[BlobInfo], *, step: int, created: float, progress: Progress
    ) -> Manifest:
        """Upload ``blobs`` from local ``folder``, then the manifest; each verified by md5."""
        if self.lease is not None:
            self.lease.check()  # a runtime taken over uploads nothing more
        tag = secrets.token_hex(4)
        remote = f"{self.folder}/step-{step:09d}-{tag}"
        transfer = TransferProgress(_UploadFields(progress, progress.get("retries") or 0))
        ids = {}
        for blob in blobs:
            result = self.client.upload(
                os.path.join(folder, blob.name),
                f"{remote}/{blob.name}",
                replace=False,
                md5=blob.md5,
                progress=transfer,
            )
            ids[blob.name] = result.file.id
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
        self.client.upload(
            manifest.to_json(),
            f"{self.folder}/manifest-{step:09d}-{tag}.json",
            replace=False,
            mime_type="application/json",
        )
        return manifest

    # -- restore -----------------------------------------------------------------------------
    def _children(self) -> list[DriveFile]:
        try:
            return self.client.listdir(self.folder)
        except DriveNotFound:
            return []

    def load_newest(self, staging: str, restore: RestoreBlobs) -> Restored | None:
        """Restore the newest checkpoint whose manifest and blobs all verify and that
        ``restore(local_folder, manifest)`` accepts; None if there is none.

        Each blob is downloaded into ``staging/TAG/`` under its name from the manifest, which
        ``Manifest.from_json`` has checked is one of the snapshot's file names.
        """
        self._skipped = []
        try:
            with naming_a_full_disk(staging):
                for file, step, tag in _newest_first(self._children()):
                    local = os.path.join(staging, tag)
                    try:
                        manifest = self._fetch(file, step, local)
                        result = restore(local, manifest)
                    except (DriveError, ManifestError, IntegrityError) as exc:
                        self._skipped.append(f"{file.name}: {_reason(exc)}")
                        continue
                    finally:
                        shutil.rmtree(local, ignore_errors=True)
                    blobs = f"{self.location}/step-{step:09d}-{tag}"
                    location = f"{self.location}/{file.name}"
                    return Restored(manifest, location, blobs, result, self._skipped)
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch(self, file: DriveFile, step: int, local: str) -> Manifest:
        """The manifest in ``file``, with its blobs downloaded into ``local``."""
        manifest = self._manifest(file, step)
        shutil.rmtree(local, ignore_errors=True)
        os.makedirs(local)
        for blob in manifest.blobs:
            if not _FILE_ID.match(blob.file_id):
                raise ManifestError(f"blob {blob.name}: {blob.file_id[:100]!r} is not a Drive id")
            try:
                remote = self.client.file(blob.file_id)
            except DriveNotFound:
                raise IntegrityError(f"{blob.name} is no longer on Drive") from None
            if remote.md5 != blob.md5 or remote.size != blob.size:
                raise IntegrityError(
                    f"{blob.name} on Drive has md5 {remote.md5}, the manifest says {blob.md5}"
                )
            self.client.download(remote, os.path.join(local, blob.name))
        return manifest

    def _manifest(self, file: DriveFile, step: int) -> Manifest:
        """The manifest in ``file``, checked against its name and this run."""
        if file.size is not None and file.size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"it is {file.size} bytes, more than a manifest can be")
        manifest = Manifest.from_json(self.client.read_bytes(file))
        if manifest.run != self.run:
            raise ManifestError(f"it belongs to run {manifest.run[:100]!r}")
        if manifest.step != step:
            raise ManifestError(f"its name says step {step}, it says step {manifest.step}")
        return manifest

    def skipped_without_restore(self) -> list[str]:
        return list(self._skipped)

    # -- retention ---------------------------------------------------------------------------
    def prune(self, keep: int) -> None:
        """Keep the ``keep`` newest checkpoints; delete older ones and orphaned blob folders.

        A manifest goes before its blobs, so a half-done prune never leaves a manifest whose
        blobs are gone. Runs only after a commit is confirmed: the newest is always kept.
        Skipped while the lease is not confirmed: the next commit prunes instead.
        """
        if self.lease is not None and not self.lease.valid():
            return
        children = self._children()
        manifests = _newest_first(children)
        if not manifests:
            return
        kept_tags = {tag for _, _, tag in manifests[:keep]}
        newest_time = manifests[0][0].created_time
        doomed_manifests = [f.id for f, _, tag in manifests[keep:]]
        if doomed_manifests:
            self.client.delete_ids(doomed_manifests)
        doomed_blobs = []
        for file in children:
            match = _BLOBS.match(file.name)
            if not match or not file.is_folder or match.group(2) in kept_tags:
                continue
            # A blob folder without a kept manifest: pruned, or left by a commit that never
            # finished. Only those older than the newest confirmed checkpoint are surely dead.
            if file.created_time < newest_time:
                doomed_blobs.append(file.id)
        if doomed_blobs:
            self.client.delete_ids(doomed_blobs)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
