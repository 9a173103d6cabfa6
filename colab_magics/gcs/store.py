"""Checkpoints in a GCS bucket: the commit protocol of ``colab_magics.checkpoint.store``.

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
import re
from typing import Any

from colab_magics.checkpoint.formats import BlobInfo, IntegrityError
from colab_magics.checkpoint.manifest import ManifestBlob, ManifestError
from colab_magics.checkpoint.store import BLOBS, Entry, ManifestStore
from colab_magics.gcs.client import GcsClient, GcsObject, split_id
from colab_magics.gcs.download import download, read_bytes
from colab_magics.gcs.errors import GcsError
from colab_magics.gcs.paths import parse_gs
from colab_magics.gcs.push import upload_bytes, upload_file
from colab_magics.progress import Callback

_BLOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class GcsCheckpointStore(ManifestStore):
    """Commits, lists, restores and prunes the checkpoints of one run below one GCS prefix."""

    where = "in the bucket"
    errors = (GcsError,)

    def __init__(self, client: GcsClient, url: str, *, run: str, lease: Any = None) -> None:
        super().__init__(run=run, lease=lease)
        path = parse_gs(url)
        self.client = client
        self.bucket = path.bucket
        self.prefix = path.name.strip("/")
        self.location = f"gs://{self.bucket}/{self.prefix}"

    def _name(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def entries(self) -> list[Entry]:
        below = self.client.list(self.bucket, self._name("") if self.prefix else "")
        start = len(self.prefix) + 1 if self.prefix else 0
        return [Entry(o.name[start:], o.created, o.name, o.size, False, o) for o in below]

    def put_blob(self, path: str, name: str, blob: BlobInfo, transfer: Callback) -> str:
        transfer.set_size(blob.size)
        stored = upload_file(self.client, path, self.bucket, self._name(name), blob.md5)
        transfer.relative_update(blob.size)
        return stored.id

    def put_manifest(self, name: str, data: bytes) -> None:
        md5 = hashlib.md5(data).hexdigest()
        upload_bytes(
            self.client, data, self.bucket, self._name(name), md5, content_type="application/json"
        )

    def read(self, entry: Entry) -> bytes:
        return read_bytes(self.client, entry.ref)

    def find_blob(self, blob: ManifestBlob, tag: str) -> tuple[Any, str | None, int | None]:
        """The generation a manifest names, once the names in it are ones this store writes."""
        name, generation = split_id(blob.file_id)
        match = BLOBS.match(name[len(self.prefix) + 1 :] if self.prefix else name)
        if (
            not _BLOB_NAME.match(blob.name)
            or generation is None
            or (self.prefix and not name.startswith(self.prefix + "/"))
            or match is None
            or match.group(2) != tag
            or match.group(3) != blob.name
        ):
            raise ManifestError(
                f"it names {blob.file_id!r} for {blob.name!r}, not a blob of its own"
            )
        remote = self.client.stat(self.bucket, name, generation=generation)
        if remote is None or remote.generation != generation:
            raise IntegrityError(f"{blob.name} is no longer in the bucket")
        return remote, remote.md5, remote.size

    def download(self, ref: GcsObject, dest: str) -> None:
        download(self.client, ref, dest)

    def delete(self, entries: list[Entry]) -> None:
        for entry in entries:  # each names the generation it saw
            self.client.delete(entry.ref)

    def blob_tag(self, entry: Entry) -> str | None:
        match = BLOBS.match(entry.name)
        return match.group(2) if match and match.group(3) else None
