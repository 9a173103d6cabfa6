"""``gs://BUCKET/PATH`` URLs: parsing, and which object names can be local file names."""

from __future__ import annotations

import dataclasses
import os
import re

from colab_magics.sync.errors import SyncError

SCHEME = "gs://"
# Bucket naming rules: https://cloud.google.com/storage/docs/buckets#naming
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


@dataclasses.dataclass(frozen=True)
class GsPath:
    bucket: str
    name: str
    """The object name or prefix ("" for the whole bucket), without a leading '/'."""

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.name}"

    def child(self, rel: str) -> str:
        """The object name of ``rel`` below this path taken as a folder."""
        return f"{self.name.rstrip('/')}/{rel}" if self.name.strip("/") else rel


def is_gs(path: object) -> bool:
    """Whether ``path`` is a ``gs://`` URL (and not a local path)."""
    return isinstance(path, str) and path.startswith(SCHEME)


def parse_gs(url: str | os.PathLike[str]) -> GsPath:
    """``gs://bucket/a/b`` -> ``GsPath("bucket", "a/b")``; a one-line :class:`SyncError` if bad."""
    text = os.fspath(url)
    if not text.startswith(SCHEME):
        raise SyncError(f"{text!r} is not a gs:// URL; write gs://BUCKET/PATH")
    bucket, _, name = text[len(SCHEME) :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise SyncError(
            f"{text!r}: {bucket!r} is not a bucket name (3-222 lowercase letters, digits, "
            "'-', '_' or '.'); write gs://BUCKET/PATH"
        )
    return GsPath(bucket, name.lstrip("/"))


def unsafe_reason(rel: str) -> str | None:
    """Why the object path ``rel`` (relative to the pulled prefix) cannot be written locally,
    or None when it can: GCS names are free text, and ``..`` or an empty component would
    leave the target or collide with a folder."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\0" in rel or "\\" in rel:
        return f"the object name {rel!r} cannot be a local path (empty, '.', '..' or '\\' in it)"
    return None
