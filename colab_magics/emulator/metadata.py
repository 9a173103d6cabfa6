"""File metadata from request bodies, checked field by field as Drive checks it."""

from __future__ import annotations

from typing import Any

from colab_magics.emulator.errors import DriveError, invalid
from colab_magics.emulator.records import FileChanges, NewFile, normalize_time


def _string(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid value for {key}.", location=key)
    return value


def _bool(body: dict, key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(f"Invalid value for {key}.", location=key)
    return value


def _time(body: dict, key: str) -> str | None:
    value = _string(body, key)
    if value is None:
        return None
    try:
        return normalize_time(value)
    except ValueError:
        raise invalid(f"Invalid value for {key}: {value!r}.", location=key) from None


def _props(body: dict, key: str, *, allow_delete: bool) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid value for {key}.", location=key)
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None and allow_delete:
            out[k] = None
        elif isinstance(v, str):
            # Drive limits a key plus its value to 124 bytes.
            if len(k.encode()) + len(v.encode()) > 124:
                raise invalid(
                    f"The size of the property {k!r} exceeds the 124 bytes limit.", location=key
                )
            out[k] = v
        else:
            raise invalid(f"Invalid value for {key}.{k}.", location=key)
    return out


READ_ONLY = frozenset(
    {
        "capabilities", "driveId", "explicitlyTrashed", "exportLinks", "fileExtension",
        "fullFileExtension", "hasAugmentedPermissions", "hasThumbnail", "headRevisionId",
        "iconLink", "imageMediaMetadata", "isAppAuthorized", "lastModifyingUser", "md5Checksum",
        "modifiedByMe", "ownedByMe", "owners", "permissionIds", "permissions", "quotaBytesUsed",
        "resourceKey", "sha1Checksum", "sha256Checksum", "shared", "sharingUser", "size",
        "spaces", "teamDriveId", "thumbnailLink", "thumbnailVersion", "trashingUser", "version",
        "videoMediaMetadata", "viewedByMe", "webContentLink", "webViewLink",
    }
)  # fmt: skip
"""File fields the discovery document marks "Output only": a body carrying one is refused
(``kind`` excepted: Google APIs take a resource's own kind back)."""


def _not_writable() -> DriveError:
    return DriveError(
        403,
        "fieldNotWritable",
        "The resource body includes fields which are not directly writable.",
    )


def _refuse_read_only(body: dict[str, Any]) -> None:
    if READ_ONLY.intersection(body):
        raise _not_writable()


def new_file(body: dict[str, Any], *, media_type: str | None = None) -> NewFile:
    """A ``NewFile`` from a create (or copy) body; ``media_type`` is the content's type."""
    _refuse_read_only(body)
    parents = body.get("parents")
    if parents is not None and (
        not isinstance(parents, list) or not all(isinstance(p, str) for p in parents)
    ):
        raise invalid("Invalid value for parents.", location="parents")
    file_id = _string(body, "id")
    spec = NewFile(
        name=_string(body, "name") or "Untitled",
        mime_type=_string(body, "mimeType") or media_type or "application/octet-stream",
        description=_string(body, "description"),
        parents=parents or None,
        starred=bool(_bool(body, "starred")),
        app_properties=_props(body, "appProperties", allow_delete=False),
        properties=_props(body, "properties", allow_delete=False),
        created_time=_time(body, "createdTime"),
        modified_time=_time(body, "modifiedTime"),
        original_filename=_string(body, "originalFilename"),
        file_id=file_id,
    )
    return spec


def file_changes(body: dict[str, Any]) -> FileChanges:
    """``FileChanges`` from an update body; ``parents`` is not writable there, as on Drive."""
    _refuse_read_only(body)
    if "parents" in body or body.get("id") is not None:
        raise _not_writable()
    name = _string(body, "name")
    if name is not None and not name:
        raise invalid("The name of a file cannot be empty.", location="name")
    return FileChanges(
        name=name,
        mime_type=_string(body, "mimeType"),
        description=_string(body, "description"),
        starred=_bool(body, "starred"),
        trashed=_bool(body, "trashed"),
        modified_time=_time(body, "modifiedTime"),
        original_filename=_string(body, "originalFilename"),
        app_properties=_props(body, "appProperties", allow_delete=True),
        properties=_props(body, "properties", allow_delete=True),
    )
