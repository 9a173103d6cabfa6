"""Plain records of the store: a file row, what a create or an update asks for, and times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets

from colab_magics.emulator.schema import FOLDER_MIME, NATIVE_PREFIX

EMPTY_MD5 = hashlib.md5(b"").hexdigest()
EMPTY_SHA1 = hashlib.sha1(b"").hexdigest()
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def now_rfc3339() -> str:
    """The current UTC time as Drive writes it: milliseconds and ``Z``."""
    t = dt.datetime.now(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_TIME_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:[Zz]|([+-]\d{2}:\d{2}))"
)


def normalize_time(value: str) -> str:
    """An RFC 3339 time as stored: UTC, milliseconds, ``Z``; ``ValueError`` if malformed."""
    m = _TIME_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(value)
    frac = (m.group(3) or "").ljust(6, "0")[:6]
    t = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{frac}{m.group(4) or '+00:00'}")
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def new_file_id() -> str:
    """An id shaped like Drive's (33 URL-safe characters)."""
    return "1" + secrets.token_urlsafe(24)


@dataclasses.dataclass
class FileRecord:
    """One row of ``files`` with its parents and properties."""

    id: str
    name: str
    mime_type: str
    description: str | None
    size: int | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    blob: str | None
    created_time: str
    modified_time: str
    trashed: bool
    explicitly_trashed: bool
    trashed_time: str | None
    starred: bool
    version: int
    original_filename: str | None
    listed_at: float
    parents: list[str] = dataclasses.field(default_factory=list)
    app_properties: dict[str, str] = dataclasses.field(default_factory=dict)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER_MIME

    @property
    def is_native(self) -> bool:
        """A Google Docs Editors file or shortcut: no bytes of its own, only exports."""
        return self.mime_type.startswith(NATIVE_PREFIX) and not self.is_folder


COLUMNS = [
    f.name
    for f in dataclasses.fields(FileRecord)
    if f.name not in ("parents", "app_properties", "properties")
]
"""The ``files`` table's columns, in ``FileRecord`` order."""


@dataclasses.dataclass
class NewFile:
    """What a create asks for, already validated."""

    name: str = "Untitled"
    mime_type: str = "application/octet-stream"
    description: str | None = None
    parents: list[str] | None = None
    starred: bool = False
    app_properties: dict[str, str] = dataclasses.field(default_factory=dict)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    created_time: str | None = None
    modified_time: str | None = None
    original_filename: str | None = None
    file_id: str | None = None


@dataclasses.dataclass
class FileChanges:
    """What an update asks for; ``None`` means unchanged. Property values of ``None`` delete."""

    name: str | None = None
    mime_type: str | None = None
    description: str | None = None
    starred: bool | None = None
    trashed: bool | None = None
    modified_time: str | None = None
    original_filename: str | None = None
    app_properties: dict[str, str | None] = dataclasses.field(default_factory=dict)
    properties: dict[str, str | None] = dataclasses.field(default_factory=dict)
    add_parents: list[str] = dataclasses.field(default_factory=list)
    remove_parents: list[str] = dataclasses.field(default_factory=list)
