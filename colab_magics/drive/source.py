"""Reading an upload's source once: hashing as it reads, reading ahead on a thread."""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from typing import IO


class SourceReader:
    """Reads a source once, hashing every byte as it is first read.

    After :meth:`prefetch`, a background thread reads and hashes the next block while the
    current chunk is on the wire (file reads, md5 and socket sends all release the GIL).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.md5 = hashlib.md5()
        self.read_bytes = 0
        self._queue: queue.Queue[bytes | BaseException] | None = None
        self._pending = memoryview(b"")
        self._eof = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_raw(self, n: int) -> bytes:
        parts = []
        while n > 0:
            data = self.stream.read(n)
            if not data:
                break
            parts.append(data)
            n -= len(data)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.md5.update(data)
        self.read_bytes += len(data)
        return data

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at the end of the source."""
        if self._queue is None:
            return self._read_raw(n)
        parts: list[bytes | memoryview] = []
        while n > 0:
            if not self._pending:
                if self._eof:
                    break
                item = self._queue.get()
                if isinstance(item, BaseException):
                    raise item
                if not item:
                    self._eof = True
                    break
                if len(item) == n and not parts:
                    return item  # blocks aligned with chunks: no copy
                self._pending = memoryview(item)
            take = self._pending[:n]
            self._pending = self._pending[len(take) :]
            parts.append(take)
            n -= len(take)
        return b"".join(parts)

    def prefetch(self, block: int, first: int) -> None:
        """Start reading ahead, one block in advance: ``first`` bytes, then ``block`` each."""
        self._queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(
            target=self._produce, args=(block, first), name="drive-read-ahead", daemon=True
        )
        self._thread.start()

    def _produce(self, block: int, first: int) -> None:
        assert self._queue is not None
        size = first
        while not self._stop.is_set():
            try:
                item: bytes | BaseException = self._read_raw(size)
                size = block
            except BaseException as exc:  # handed to the consumer, raised there
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException) or not item:
                return

    def close(self) -> None:
        """Stop reading ahead (the upload ended, well or badly)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def remaining_size(stream: IO[bytes]) -> int | None:
    """Bytes left in a seekable stream, None when it cannot tell."""
    try:
        if not stream.seekable():
            return None
        pos = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None
