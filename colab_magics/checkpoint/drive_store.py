"""Checkpoints on Drive: the commit protocol of ``store.py`` on Drive files.

Layout in the run's folder (``colab_magics/checkpoints/NAME`` by default): see
``colab_magics.checkpoint.store``. Drive names are not unique, so nothing is found by name
alone: a manifest names its blobs by file id and md5, and restore orders manifests by Drive's
createdTime.

With a lease (``lease.py``) the store writes manifests and prunes only while it holds the
run: a runtime another one took over never adds to or deletes from the run's checkpoints.
"""

from __future__ import annotations

import re
from typing import Any

from colab_magics.checkpoint.formats import BlobInfo, IntegrityError
from colab_magics.checkpoint.lease import Lease
from colab_magics.checkpoint.manifest import ManifestBlob, ManifestError
from colab_magics.checkpoint.store import BLOBS, Entry, ManifestStore
from colab_magics.drive import Callback, DriveClient, DriveError, DriveFile, DriveNotFound

_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class DriveCheckpointStore(ManifestStore):
    """Commits, lists, restores and prunes the checkpoints of one run in one Drive folder."""

    where = "on Drive"
    errors = (DriveError,)

    def __init__(
        self, client: DriveClient, folder: str, *, run: str, lease: Lease | None = None
    ) -> None:
        super().__init__(run=run, lease=lease)
        self.client = client
        self.folder = folder
        self.location = f"drive:{folder}"

    @classmethod
    def for_current_client(cls, folder: str, *, run: str) -> DriveCheckpointStore:
        from colab_magics.connection import current_client

        return cls(current_client(), folder, run=run)

    def entries(self) -> list[Entry]:
        try:
            children = self.client.listdir(self.folder)
        except DriveNotFound:
            return []
        return [Entry(f.name, f.created_time, f.id, f.size, f.is_folder, f) for f in children]

    def put_blob(self, path: str, name: str, blob: BlobInfo, transfer: Callback) -> str:
        result = self.client.upload(
            path, f"{self.folder}/{name}", replace=False, md5=blob.md5, progress=transfer
        )
        return result.file.id

    def put_manifest(self, name: str, data: bytes) -> None:
        self.client.upload(
            data, f"{self.folder}/{name}", replace=False, mime_type="application/json"
        )

    def read(self, entry: Entry) -> bytes:
        return self.client.read_bytes(entry.ref)

    def find_blob(self, blob: ManifestBlob, tag: str) -> tuple[Any, str | None, int | None]:
        if not _FILE_ID.match(blob.file_id):
            raise ManifestError(f"blob {blob.name}: {blob.file_id[:100]!r} is not a Drive id")
        try:
            remote: DriveFile = self.client.file(blob.file_id)
        except DriveNotFound:
            raise IntegrityError(f"{blob.name} is no longer on Drive") from None
        return remote, remote.md5, remote.size

    def download(self, ref: Any, dest: str) -> None:
        self.client.download(ref, dest)

    def delete(self, entries: list[Entry]) -> None:
        self.client.delete_ids([e.key for e in entries])

    def blob_tag(self, entry: Entry) -> str | None:
        match = BLOBS.match(entry.name)
        return match.group(2) if match and entry.folder and not match.group(3) else None
