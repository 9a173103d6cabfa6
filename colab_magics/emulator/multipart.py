"""A streaming reader for ``multipart/related`` upload bodies (metadata part, then media).

google-api-python-client writes these with bare ``\\n`` line ends (the ``email`` package's
default) while the RFC asks for ``\\r\\n``; the first boundary line tells which one is used.
The media part is passed on block by block, never held whole in memory.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator

from colab_magics.emulator.errors import bad_request

_MAX_HEADERS = 64 * 1024


def _malformed() -> Exception:
    return bad_request("Malformed multipart body.")


class MultipartReader:
    """Reads parts of a multipart body from an iterator of byte blocks."""

    def __init__(self, blocks: Iterator[bytes], boundary: str) -> None:
        self._blocks = blocks
        self._buf = b""
        self._boundary = b"--" + boundary.encode("latin-1")
        self._eol = b"\r\n"
        self._done = False

    def _more(self) -> bool:
        block = next(self._blocks, None)
        if block is None:
            return False
        self._buf += block
        return True

    def _line(self) -> bytes:
        """The next line without its line end."""
        while b"\n" not in self._buf:
            if len(self._buf) > _MAX_HEADERS or not self._more():
                raise _malformed()
        line, _, self._buf = self._buf.partition(b"\n")
        return line[:-1] if line.endswith(b"\r") else line

    def start(self) -> None:
        """Skip the preamble up to the first boundary and learn the line-end style."""
        while True:
            while b"\n" not in self._buf:
                if len(self._buf) > _MAX_HEADERS or not self._more():
                    raise _malformed()
            line, _, rest = self._buf.partition(b"\n")
            self._buf = rest
            if line.rstrip(b"\r").rstrip(b" \t") == self._boundary:
                self._eol = b"\r\n" if line.endswith(b"\r") else b"\n"
                return

    def headers(self) -> dict[str, str] | None:
        """The next part's headers (names lower-cased), or ``None`` after the last part."""
        if self._done:
            return None
        headers: dict[str, str] = {}
        while True:
            line = self._line()
            if not line:
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _malformed()
            headers[name.strip().lower()] = value.strip()

    def body(self, sink: Callable[[bytes], None]) -> None:
        """Pass the current part's body to ``sink`` up to the next boundary."""
        delim = self._eol + self._boundary
        keep = len(delim) + 2
        while True:
            i = self._buf.find(delim)
            if i >= 0 and len(self._buf) >= i + len(delim) + 2:
                sink(self._buf[:i])
                after = self._buf[i + len(delim) :]
                if after.startswith(b"--"):
                    self._done = True
                    self._buf = b""
                    return
                # The rest of the boundary line (transport padding, then the line end).
                self._buf = after
                self._line()
                return
            if i < 0 and len(self._buf) > keep:
                sink(self._buf[:-keep])
                self._buf = self._buf[-keep:]
            if not self._more():
                raise _malformed()


class Base64Sink:
    """Decodes a base64 part as it streams (line breaks allowed) into ``sink``."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._rest = b""

    def write(self, data: bytes) -> None:
        text = self._rest + b"".join(data.split())
        whole = len(text) - len(text) % 4
        self._rest = text[whole:]
        if whole:
            self._sink(_decode(text[:whole]))

    def close(self) -> None:
        if self._rest:
            raise _malformed()


def _decode(text: bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed() from None
