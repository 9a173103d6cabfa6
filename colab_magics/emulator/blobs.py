"""File content on disk: immutable blobs under ROOT/blobs, written once while hashed.

A new version of a file's content is always a new blob, so a download in flight keeps
reading the old one while an update lands.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from colab_magics.emulator.wire import READ_BLOCK


@dataclasses.dataclass(frozen=True)
class Blob:
    """Content written to a temporary file, not yet owned by any Drive file. ``sha1`` and
    ``sha256`` are None for content Drive stored before it kept them."""

    path: Path
    size: int
    md5: str
    sha1: str | None
    sha256: str | None


class ContentHashes:
    """The checksums Drive keeps of binary content, fed as the bytes arrive (files resource:
    ``md5Checksum``, ``sha1Checksum``, ``sha256Checksum``)."""

    def __init__(self, hashes: tuple[Any, ...] | None = None) -> None:
        self._hashes = hashes or tuple(hashlib.new(a) for a in ("md5", "sha1", "sha256"))

    def update(self, data: bytes | memoryview) -> None:
        for h in self._hashes:
            h.update(data)

    def copy(self) -> ContentHashes:
        return ContentHashes(tuple(h.copy() for h in self._hashes))

    def blob(self, path: Path, size: int) -> Blob:
        return Blob(path, size, *(h.hexdigest() for h in self._hashes))


class BlobWriter:
    """Write content in pieces, hashing as it goes; ``finish()`` gives the ``Blob``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by finish()/discard()
        self._hashes = ContentHashes()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hashes.update(data)
        self.size += len(data)

    def finish(self) -> Blob:
        self._file.close()
        return self._hashes.blob(self.path, self.size)

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    """The ``blobs/`` folder (owned content) and a ``tmp/`` folder for content being written."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs"
        self.tmp = root / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        # Content half written when the process died belongs to nobody.
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, name: str) -> Path:
        return self.dir / name

    def writer(self) -> BlobWriter:
        return BlobWriter(self.tmp / secrets.token_hex(16))

    def from_bytes(self, data: bytes) -> Blob:
        writer = self.writer()
        writer.write(data)
        return writer.finish()

    def adopt(self, blob: Blob) -> str:
        """Move ``blob`` into ``blobs/`` and return its name there."""
        name = secrets.token_hex(16)
        os.replace(blob.path, self.dir / name)
        return name

    def duplicate(self, name: str) -> str:
        """A new blob with the same content as ``name`` (a hard link where possible)."""
        new = secrets.token_hex(16)
        try:
            os.link(self.dir / name, self.dir / new)
        except OSError:
            shutil.copyfile(self.dir / name, self.dir / new)
        return new

    def remove(self, name: str | None) -> None:
        if name:
            (self.dir / name).unlink(missing_ok=True)


def hash_file(path: Path, upto: int) -> ContentHashes:
    """Hashes fed with the first ``upto`` bytes of ``path``."""
    hashes = ContentHashes()
    with open(path, "rb") as f:
        left = upto
        while left > 0:
            data = f.read(min(READ_BLOCK, left))
            if not data:
                break
            hashes.update(data)
            left -= len(data)
    return hashes
