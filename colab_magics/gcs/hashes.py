"""The hash an object is verified with: crc32c where google-crc32c runs compiled, else md5.

GCS stores both as base64 of the big-endian digest; every object has a crc32c, and composite
objects (made by ``compose``, as parallel composite uploads do) have no md5
(https://cloud.google.com/storage/docs/hashes-etags). Either catches accidents on the way;
compiled crc32c runs at ~10 GiB/s where md5 runs at ~0.6, so on a fast link md5 would be the
slowest stage of a download. google-crc32c's pure-Python fallback is slower than md5, so
without its C extension md5 is used where there is one.
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


def compiled_crc32c() -> bool:
    import google_crc32c

    return google_crc32c.implementation == "c"


class ObjectHash:
    """Hashes bytes as they arrive and compares them with the object's own hash."""

    def __init__(self, md5: str | None, crc32c: str | None) -> None:
        if crc32c and (compiled_crc32c() or not md5):
            import google_crc32c

            self.kind, self.expected = "crc32c", crc32c
            self._digest: _Digest = google_crc32c.Checksum()
        elif md5:
            self.kind, self.expected = "md5", md5
            self._digest = hashlib.md5()
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
