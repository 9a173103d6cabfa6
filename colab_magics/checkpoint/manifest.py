"""The manifest: written last, it is what makes a set of uploaded blobs a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time

from colab_magics.checkpoint.formats import BlobInfo
from colab_magics.units import format_seconds

MANIFEST_FORMAT = 1


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
        try:
            document = json.loads(data)
            if document.get("format") != MANIFEST_FORMAT:
                raise ManifestError(f"unknown manifest format {document.get('format')!r}")
            blobs = tuple(
                ManifestBlob(str(b["name"]), int(b["size"]), str(b["md5"]), str(b["file_id"]))
                for b in document["blobs"]
            )
            return cls(
                run=str(document["run"]),
                step=int(document["step"]),
                created=float(document["created"]),
                blobs=blobs,
                versions=dict(document.get("versions", {})),
                holder=str(document.get("holder", "")),
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(
                f"not a readable manifest ({exc.__class__.__name__}: {exc})"
            ) from None

    def expected_md5(self) -> dict[str, str]:
        return {b.name: b.md5 for b in self.blobs}


def library_versions() -> dict[str, str]:
    """Versions that matter to whoever loads the checkpoint later."""
    from colab_magics import __version__

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
