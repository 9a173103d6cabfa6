"""What the client returns and sends: Drive file metadata, quota, upload targets, and the
fields it asks Drive for."""

from __future__ import annotations

import dataclasses
import mimetypes
from typing import Any

from colab_magics.drive.checksum import ALGORITHMS, Checksum, fastest_first

FOLDER_MIME = "application/vnd.google-apps.folder"
NATIVE_PREFIX = "application/vnd.google-apps."
"""Google's own types: Docs, Sheets, Slides, shortcuts (and folders)."""

# Only what the client uses: partial responses keep listings of 100k files small.
FILE_FIELDS = (
    "id,name,mimeType,size,md5Checksum,sha1Checksum,sha256Checksum,parents,createdTime,"
    "modifiedTime,trashed,appProperties"
)
LIST_FIELDS = f"nextPageToken,files({FILE_FIELDS})"


@dataclasses.dataclass(frozen=True)
class DriveFile:
    """One file or folder as Drive reported it (``size`` and the checksums are None for
    folders and for Google-native files, see :attr:`is_native`; ``sha1``/``sha256`` also for
    content Drive stored before it kept them)."""

    id: str
    name: str
    mime_type: str = "application/octet-stream"
    size: int | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    parents: tuple[str, ...] = ()
    created_time: str = ""
    modified_time: str = ""
    trashed: bool = False
    app_properties: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER_MIME

    @property
    def is_native(self) -> bool:
        """A Google Docs Editors file or a shortcut: no bytes to download (export only)."""
        return self.mime_type.startswith(NATIVE_PREFIX) and not self.is_folder

    def checksum(self, algorithm: str) -> Checksum | None:
        value = getattr(self, algorithm) if algorithm in ALGORITHMS else None
        return Checksum(algorithm, value) if value else None

    @property
    def verifiable_by(self) -> Checksum | None:
        """The checksum Drive gave that is quickest to compute here (None: none given)."""
        return next(filter(None, map(self.checksum, fastest_first())), None)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DriveFile:
        """From a Drive v3 file resource (int64 ``size`` arrives as a string)."""
        size = data.get("size")
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            mime_type=data.get("mimeType", "application/octet-stream"),
            size=int(size) if size is not None else None,
            md5=data.get("md5Checksum"),
            sha1=data.get("sha1Checksum"),
            sha256=data.get("sha256Checksum"),
            parents=tuple(data.get("parents") or ()),
            created_time=data.get("createdTime", ""),
            modified_time=data.get("modifiedTime", ""),
            trashed=bool(data.get("trashed", False)),
            app_properties=dict(data.get("appProperties") or {}),
        )


@dataclasses.dataclass(frozen=True)
class Quota:
    """Storage quota in bytes; ``limit`` is None for unlimited accounts."""

    limit: int | None
    usage: int
    usage_in_drive: int
    usage_in_trash: int

    @property
    def free(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.usage)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Quota:
        q = data.get("storageQuota", data)
        limit = q.get("limit")
        return cls(
            limit=int(limit) if limit is not None else None,
            usage=int(q.get("usage", 0)),
            usage_in_drive=int(q.get("usageInDrive", 0)),
            usage_in_trash=int(q.get("usageInDriveTrash", 0)),
        )


@dataclasses.dataclass
class UploadTarget:
    """Where the bytes go: a new file (``name`` in ``parent_id``, maybe a pre-generated
    ``new_id``) or, with ``file_id``, new content for an existing file."""

    name: str | None = None
    parent_id: str | None = None
    file_id: str | None = None
    new_id: str | None = None
    mime_type: str | None = None
    app_properties: dict[str, str] | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.name is not None:
            meta["name"] = self.name
        if self.app_properties:
            meta["appProperties"] = dict(self.app_properties)
        if self.file_id is None:
            if self.parent_id:
                meta["parents"] = [self.parent_id]
            if self.new_id:
                meta["id"] = self.new_id
        if self.mime_type:
            meta["mimeType"] = self.mime_type
        return meta

    @property
    def content_type(self) -> str:
        if self.mime_type:
            return self.mime_type
        guessed = mimetypes.guess_type(self.name or "")[0]
        return guessed or "application/octet-stream"
