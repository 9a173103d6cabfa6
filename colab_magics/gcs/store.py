"""Checkpoints in a GCS bucket: the commit protocol of the Drive store, on objects.

Layout below ``gs://BUCKET/PREFIX`` (as on Drive)::

    step-000001200-3f9a1c2e/torch.pt, values.json, ...   the blobs of one checkpoint
    manifest-000001200-3f9a1c2e.json                     written last

Every object is written with ``ifGenerationMatch=0`` — it must not exist yet, so a commit
never replaces anything, a manifest included — and with the md5 it must have; a write counts
once GCS's md5 for it is ours. A manifest names each blob by ``name#generation``, so a blob
replaced since is seen as gone, not read as the old one. Restore takes the newest manifest
(by its creation time on GCS, then step) whose blobs all verify.

With a lease set (``lease``: anything with ``check()``, ``valid()`` and ``token``), manifests
are written and old checkpoints pruned only while it holds the run.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from typing import Any

from colab_magics.checkpoint.drive_store import _reason, _UploadFields
from colab_magics.checkpoint.formats import BlobInfo, IntegrityError
from colab_magics.checkpoint.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    blobs_with_ids,
    library_versions,
)
from colab_magics.checkpoint.session import RestoreBlobs, Restored
from colab_magics.checkpoint.staging import naming_a_full_disk
from colab_magics.drive.progress import TransferProgress
from colab_magics.gcs.client import GcsClient, GcsObject, split_id
from colab_magics.gcs.download import download, read_bytes
from colab_magics.gcs.errors import GcsError
from colab_magics.gcs.paths import parse_gs
from colab_magics.gcs.push import upload_bytes, upload_file
from colab_magics.progress import Progress

_MANIFEST = re.compile(r"^manifest-(\d{9,})-([0-9a-f]{8})\.json$")
_BLOB = re.compile(r"^step-(\d{9,})-([0-9a-f]{8})/([^/]+)$")
_BLOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class GcsCheckpointStore:
    """Commits, lists, restores and prunes the checkpoints of one run below one GCS prefix."""

    def __init__(self, client: GcsClient, url: str, *, run: str, lease: Any = None) -> None:
        path = parse_gs(url)
        self.client = client
        self.bucket = path.bucket
        self.prefix = path.name.strip("/")
        self.run = run
        self.lease = lease
        self.location = f"gs://{self.bucket}/{self.prefix}"
        self._skipped: list[str] = []

    def _name(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _rel(self, obj: GcsObject) -> str:
        return obj.name[len(self.prefix) + 1 :] if self.prefix else obj.name

    # -- commit ------------------------------------------------------------------------------
    def commit(
        self, folder: str, blobs: list[BlobInfo], *, step: int, created: float, progress: Progress
    ) -> Manifest:
        """Upload ``blobs`` from local ``folder``, then the manifest; each confirmed by md5."""
        if self.lease is not None:
            self.lease.check()
        tag = secrets.token_hex(4)
        transfer = TransferProgress(_UploadFields(progress, progress.get("retries") or 0))
        transfer.set_size(sum(b.size for b in blobs))
        ids = {}
        for blob in blobs:
            name = self._name(f"step-{step:09d}-{tag}/{blob.name}")
            stored = upload_file(
                self.client, os.path.join(folder, blob.name), self.bucket, name, blob.md5
            )
            transfer.relative_update(blob.size)
            ids[blob.name] = stored.id
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
        data = manifest.to_json()
        upload_bytes(
            self.client,
            data,
            self.bucket,
            self._name(f"manifest-{step:09d}-{tag}.json"),
            hashlib.md5(data).hexdigest(),
            content_type="application/json",
        )
        return manifest

    # -- restore -----------------------------------------------------------------------------
    def _objects(self) -> list[GcsObject]:
        return list(self.client.list(self.bucket, self._name("") if self.prefix else ""))

    def _manifests(self, objects: list[GcsObject]) -> list[tuple[GcsObject, int, str]]:
        found = []
        for obj in objects:
            match = _MANIFEST.match(self._rel(obj))
            if match:
                found.append((obj, int(match.group(1)), match.group(2)))
        return sorted(found, key=lambda m: (m[0].created, m[1], m[0].name), reverse=True)

    def load_newest(self, staging: str, restore: RestoreBlobs) -> Restored | None:
        """Restore the newest checkpoint whose manifest and blobs all verify and that
        ``restore(local_folder, manifest)`` accepts; None if there is none."""
        self._skipped = []
        try:
            with naming_a_full_disk(staging):
                for obj, step, tag in self._manifests(self._objects()):
                    local = os.path.join(staging, tag)
                    try:
                        manifest = self._fetch(obj, step, tag, local)
                        result = restore(local, manifest)
                    except (GcsError, ManifestError, IntegrityError) as exc:
                        self._skipped.append(f"{self._rel(obj)}: {_reason(exc)}")
                        continue
                    finally:
                        shutil.rmtree(local, ignore_errors=True)
                    location = f"gs://{obj.bucket}/{obj.name}"
                    blobs = f"{self.location}/step-{step:09d}-{tag}"
                    return Restored(manifest, location, blobs, result, self._skipped)
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch(self, obj: GcsObject, step: int, tag: str, local: str) -> Manifest:
        """The manifest in ``obj``, checked against its name and this run, with its blobs
        downloaded into ``local``."""
        if obj.size is not None and obj.size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"it is {obj.size} bytes, more than a manifest can be")
        manifest = Manifest.from_json(read_bytes(self.client, obj))
        if manifest.run != self.run:
            raise ManifestError(f"it belongs to run {manifest.run[:100]!r}")
        if manifest.step != step:
            raise ManifestError(f"its name says step {step}, it says step {manifest.step}")
        shutil.rmtree(local, ignore_errors=True)
        os.makedirs(local)
        for blob in manifest.blobs:
            remote = self._blob_object(blob.name, blob.file_id, tag)
            if remote.md5 != blob.md5 or remote.size != blob.size:
                raise IntegrityError(
                    f"{blob.name} in the bucket has md5 {remote.md5}, the manifest says {blob.md5}"
                )
            download(self.client, remote, os.path.join(local, blob.name))
        return manifest

    def _blob_object(self, blob_name: str, object_id: str, tag: str) -> GcsObject:
        """The generation a manifest names, once the names in it are ones this store writes:
        a manifest may come from anyone who can write the bucket."""
        name, generation = split_id(object_id)
        match = _BLOB.match(name[len(self.prefix) + 1 :] if self.prefix else name)
        if (
            not _BLOB_NAME.match(blob_name)
            or generation is None
            or (self.prefix and not name.startswith(self.prefix + "/"))
            or match is None
            or match.group(2) != tag
            or match.group(3) != blob_name
        ):
            raise ManifestError(f"it names {object_id!r} for {blob_name!r}, not a blob of its own")
        remote = self.client.stat(self.bucket, name, generation=generation)
        if remote is None or remote.generation != generation:
            raise IntegrityError(f"{blob_name} is no longer in the bucket")
        return remote

    def skipped_without_restore(self) -> list[str]:
        return list(self._skipped)

    # -- retention ---------------------------------------------------------------------------
    def prune(self, keep: int) -> None:
        """Keep the ``keep`` newest checkpoints; delete older ones and orphaned blobs.

        Manifests go before their blobs, so a half-done prune never leaves a manifest whose
        blobs are gone; each delete names the generation it saw. Blobs of no kept manifest
        are deleted only when older than the newest manifest: a commit may still be writing
        newer ones. Skipped while a lease is set and not confirmed.
        """
        if self.lease is not None and not self.lease.valid():
            return
        objects = self._objects()
        manifests = self._manifests(objects)
        if not manifests:
            return
        kept = {tag for _, _, tag in manifests[:keep]}
        newest = manifests[0][0].created
        for obj, _, _ in manifests[keep:]:
            self.client.delete(obj)
        for obj in objects:
            match = _BLOB.match(self._rel(obj))
            if match and match.group(2) not in kept and obj.created < newest:
                self.client.delete(obj)
