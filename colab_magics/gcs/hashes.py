"""The hash an object is verified with: md5 where GCS keeps one, crc32c otherwise.

GCS stores both as base64 of the big-endian digest. Composite objects (made by ``compose``,
as parallel composite uploads do) have a crc32c but no md5
(https://cloud.google.com/storage/docs/hashes-etags#composite-objects).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Protocol

HASH_BLOCK = 1024 * 1024


class _Digest(Protocol):
    def update(self, data: bytes) -> None: ...


def md5_hex(b64: str | None) -> str | None:
    """GCS's base64 ``md5Hash`` as the hex the rest of the package uses."""
    return base64.b64decode(b64).hex() if b64 else None


def md5_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


class ObjectHash:
    """Hashes bytes as they arrive and compares them with the object's own hash."""

    def __init__(self, md5: str | None, crc32c: str | None) -> None:
        if md5:
            self.kind, self.expected = "md5", md5
            self._digest: _Digest = hashlib.md5()
        elif crc32c:
            import google_crc32c

            self.kind, self.expected = "crc32c", crc32c
            self._digest = google_crc32c.Checksum()
        else:
            raise ValueError("the object has neither md5 nor crc32c")

    def update(self, data: bytes) -> None:
        self._digest.update(data)

    def hexdigest(self) -> str:
        """In the form GCS uses for this kind: hex md5, base64 crc32c."""
        digest = self._digest.digest()  # type: ignore[attr-defined]
        return digest.hex() if self.kind == "md5" else base64.b64encode(digest).decode("ascii")

    def matches(self) -> bool:
        return self.hexdigest() == self.expected

    def update_from_file(self, path: str, limit: int | None = None) -> int:
        """Hash the first ``limit`` bytes of ``path`` (all of it for None); bytes read."""
        done = 0
        with open(path, "rb") as f:
            while limit is None or done < limit:
                want = HASH_BLOCK if limit is None else min(HASH_BLOCK, limit - done)
                block = f.read(want)
                if not block:
                    break
                self.update(block)
                done += len(block)
        return done


def file_hash(path: str, md5: str | None, crc32c: str | None) -> str:
    """The local file's hash of the kind an object with ``md5``/``crc32c`` is checked by."""
    h = ObjectHash(md5, crc32c)
    h.update_from_file(path)
    return h.hexdigest()
