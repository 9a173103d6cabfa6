"""The manifest: written last, it is what makes a set of uploaded blobs a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import re
import sys
import time
from typing import Any

from colab_magics.checkpoint.formats import BLOB_NAMES, BlobInfo
from colab_magics.units import format_seconds
from colab_magics.version import __version__

MANIFEST_FORMAT = 1
MAX_STEP = 2**53
"""Beyond any plausible step count (and the last integer a JSON reader keeps exactly)."""
MAX_MANIFEST_BYTES = 1 << 20
_MD5 = re.compile(r"^[0-9a-f]{32}$")
# Where a blob is: a Drive file id, or a bucket's ``name#generation``. Each store checks the
# form of its own ids; here only what no store's id holds is refused (control characters).
_BLOB_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,2048}$")


class ManifestError(ValueError):
    """Bytes that are not a manifest we can trust (truncated, unknown format, missing keys)."""


@dataclasses.dataclass(frozen=True)
class ManifestBlob:
    """One blob of a checkpoint: where Drive keeps it and what its bytes must hash to."""

    name: str
    size: int
    md5: str
    file_id: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a checkpoint holds: the step to resume at, when it was taken, and its blobs."""

    run: str
    step: int
    """The next step to run: every step before it is complete in this checkpoint."""
    created: float
    """Unix time the snapshot was taken."""
    blobs: tuple[ManifestBlob, ...]
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    holder: str = ""
    """The lease token of the runtime that wrote it ("" in manifests from before leases)."""

    def to_json(self) -> bytes:
        document = {
            "format": MANIFEST_FORMAT,
            "run": self.run,
            "step": self.step,
            "created": self.created,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "versions": self.versions,
            "blobs": [dataclasses.asdict(b) for b in self.blobs],
        }
        if self.holder:
            document["holder"] = self.holder
        return json.dumps(document, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse and validate: anything this package would not have written is refused."""
        try:
            document = json.loads(data)
            if not isinstance(document, dict):
                raise ManifestError("not a readable manifest (not a JSON object)")
            if document.get("format") != MANIFEST_FORMAT:
                raise ManifestError(f"unknown manifest format {_shown(document.get('format'))}")
            step = _count(document["step"], "step")
            blobs = tuple(_blob(b) for b in _list(document["blobs"], "blobs"))
            names = [b.name for b in blobs]
            if len(set(names)) != len(names):
                raise ManifestError("it lists a blob name twice")
            created = document["created"]
            if not _is_number(created) or not math.isfinite(created):
                raise ManifestError(f"its creation time {_shown(created)} is not a time")
            return cls(
                run=_text(document["run"], "run"),
                step=step,
                created=float(created),
                blobs=blobs,
                versions={str(k): str(v) for k, v in dict(document.get("versions", {})).items()},
                holder=_text(document.get("holder", ""), "holder"),
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ManifestError(
                f"not a readable manifest ({exc.__class__.__name__}: {exc})"
            ) from None

    def expected_md5(self) -> dict[str, str]:
        return {b.name: b.md5 for b in self.blobs}


def _shown(value: Any) -> str:
    """``value`` for a one-line message: whoever wrote the manifest chose it, length and all."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any, what: str) -> int:
    """A whole number from 0 to MAX_STEP, as JSON holds it (no strings, floats or booleans)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_STEP:
        raise ManifestError(f"its {what} {_shown(value)} is not a whole number from 0 to 2^53")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"its {what} {_shown(value)} is not a string")
    return value


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ManifestError(f"its {what} are not a list")
    return value


def _blob(record: Any) -> ManifestBlob:
    """One blob entry; its name must be one of the files a snapshot is made of, nothing else
    (it becomes a local file name when the checkpoint is restored)."""
    if not isinstance(record, dict):
        raise ManifestError("a blob entry is not a JSON object")
    name = record["name"]
    if name not in BLOB_NAMES:
        raise ManifestError(
            f"blob name {_shown(name)} is not one of {', '.join(sorted(BLOB_NAMES))}"
        )
    md5, file_id = _text(record["md5"], "md5"), _text(record["file_id"], "file id")
    if not _MD5.match(md5):
        raise ManifestError(f"blob {name}: {_shown(md5)} is not an md5")
    if not _BLOB_ID.match(file_id):
        raise ManifestError(f"blob {name}: {_shown(file_id)} is not a blob id")
    return ManifestBlob(name, _count(record["size"], f"blob {name}'s size"), md5, file_id)


def library_versions() -> dict[str, str]:
    """Versions that matter to whoever loads the checkpoint later."""
    versions = {"python": platform.python_version(), "colab_magics": __version__}
    for module in ("torch", "numpy"):
        loaded = sys.modules.get(module)
        if loaded is not None:
            versions[module] = str(getattr(loaded, "__version__", "?"))
    return versions


def blobs_with_ids(blobs: list[BlobInfo], ids: dict[str, str]) -> tuple[ManifestBlob, ...]:
    return tuple(ManifestBlob(b.name, b.size, b.md5, ids[b.name]) for b in blobs)


def describe_age(created: float, now: float | None = None) -> str:
    return format_seconds((now if now is not None else time.time()) - created) + " ago"


__all__ = ["Manifest", "ManifestBlob", "ManifestError", "blobs_with_ids", "library_versions"]
