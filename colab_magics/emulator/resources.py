"""Drive v3 JSON resources built from store records (int64 values as strings, as Drive sends)."""

from __future__ import annotations

from typing import Any

from colab_magics.emulator.records import FileRecord

USER = {
    "kind": "drive#user",
    "displayName": "Colab Magics",
    "emailAddress": "me@colab-magics.local",
    "me": True,
    "permissionId": "00000000000000000001",
}

_CAPABILITIES = {
    "canAddChildren": False,
    "canCopy": True,
    "canDelete": True,
    "canDownload": True,
    "canEdit": True,
    "canListChildren": False,
    "canRename": True,
    "canTrash": True,
    "canUntrash": True,
}


EXPORTS = {
    "application/vnd.google-apps.document": ("text/plain", "text/markdown"),
    "application/vnd.google-apps.spreadsheet": ("text/csv",),
    "application/vnd.google-apps.presentation": ("text/plain",),
}
"""What ``files.export`` converts each native type to here: its stored text, as is."""


def file_resource(record: FileRecord) -> dict[str, Any]:
    """The full ``drive#file`` resource for ``record``."""
    res: dict[str, Any] = {
        "kind": "drive#file",
        "id": record.id,
        "name": record.name,
        "mimeType": record.mime_type,
        "createdTime": record.created_time,
        "modifiedTime": record.modified_time,
        "modifiedByMeTime": record.modified_time,
        "trashed": record.trashed,
        "explicitlyTrashed": record.explicitly_trashed,
        "starred": record.starred,
        "version": str(record.version),
        "ownedByMe": True,
        "owners": [USER],
        "quotaBytesUsed": str(record.size or 0),
        "spaces": ["drive"],
        "capabilities": {
            **_CAPABILITIES,
            "canAddChildren": record.is_folder,
            "canListChildren": record.is_folder,
            "canDownload": not record.is_folder,
            "canCopy": not record.is_folder,
        },
    }
    if record.parents:  # the root folder has none, and Drive then leaves the field out
        res["parents"] = list(record.parents)
    if record.description is not None:
        res["description"] = record.description
    if record.trashed_time:
        res["trashedTime"] = record.trashed_time
    if record.app_properties:
        res["appProperties"] = dict(record.app_properties)
    if record.properties:
        res["properties"] = dict(record.properties)
    # Docs Editors files and shortcuts have no size or checksums (files resource, "md5Checksum:
    # Only populated for files with content stored in Google Drive").
    if not record.is_folder and not record.is_native:
        res["size"] = str(record.size or 0)
        res["md5Checksum"] = record.md5
        if record.sha1:
            res["sha1Checksum"] = record.sha1
        if record.sha256:
            res["sha256Checksum"] = record.sha256
        res["headRevisionId"] = record.blob or record.md5
        if "." in record.name.strip("."):
            res["fileExtension"] = record.name.rpartition(".")[2]
            res["fullFileExtension"] = record.name.lstrip(".").partition(".")[2]
        if record.original_filename is not None:
            res["originalFilename"] = record.original_filename
    return res
