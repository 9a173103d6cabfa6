"""Reading an upload's source: hashed as it is first read, read ahead on a thread.

:class:`SourceReader` reads a stream once (its unconfirmed bytes are held by the caller);
:class:`FileSource` streams request bodies from a seekable source and re-reads after a cut.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any

from colab_magics.drive.checksum import Checksum
from colab_magics.drive.errors import DriveIntegrityError


class SourceReader:
    """Reads a source once, md5-hashing every byte as it is first read.

    After :meth:`prefetch`, a background thread reads and hashes the next block while the
    current chunk is on the wire (file reads, md5 and socket sends all release the GIL).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._md5 = hashlib.md5()
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
        self._md5.update(data)
        self.read_bytes += len(data)
        return data

    def checksum(self) -> Checksum:
        """The md5 of every byte read so far."""
        return Checksum("md5", self._md5.hexdigest())

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


BLOCK = 4 * 1024 * 1024
"""Largest read: long enough for reads, hashing and sends to run outside the GIL."""
SLOTS = 3
"""Reused buffers: one being sent, one being read and hashed, one ready."""


class SourceChanged(DriveIntegrityError):
    """The source ended before the size it had when the upload started."""


class FileSource:
    """A seekable source sent as request bodies read straight from it, hashed on first read
    with ``algorithm`` (None: not hashed).

    A thread reads the next block into a ring of reused buffers and hashes it while the
    previous one is on the wire. Nothing is held for resending: after a cut the bytes the
    server lacks are read again from the source, and only bytes never read before are hashed,
    so a source that changed underneath shows up as a digest that differs from Drive's.
    """

    def __init__(
        self, stream: IO[bytes], total: int, request_size: int, algorithm: str | None
    ) -> None:
        self.stream = stream
        self.base = stream.tell()
        self.total = total
        self.request_size = request_size
        self._digest = hashlib.new(algorithm) if algorithm else None
        self.seen = 0  # bytes [0, seen) of the source were read (and hashed, if hashing)
        block = min(BLOCK, request_size)
        self._ring = [bytearray(block) for _ in range(SLOTS)]
        self._free: queue.Queue[int] = queue.Queue()
        self._ready: queue.Queue[tuple[int, int] | BaseException] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next = -1  # source offset of the next block the reader will hand over
        self._sending = False  # a body is part way through

    def checksum(self) -> Checksum | None:
        """The digest of every byte read so far (None: not hashing)."""
        if self._digest is None:
            return None
        return Checksum(self._digest.name, self._digest.hexdigest())

    def body(self, offset: int, length: int) -> Iterable[memoryview]:
        """Bytes ``[offset, offset + length)`` as a request body; iterable again for a retry."""
        source = self

        class Body:
            def __iter__(self) -> Iterator[memoryview]:
                return source._blocks(offset, length)

        return Body()

    def request_length(self, offset: int) -> int:
        """Bytes of the request that starts at ``offset``: up to the next request boundary."""
        boundary = (offset // self.request_size + 1) * self.request_size
        return min(boundary, self.total) - offset

    def _blocks(self, offset: int, length: int) -> Iterator[memoryview]:
        # A body abandoned mid-way (a cut) left a block unreturned and the reader elsewhere.
        if offset != self._next or self._sending:
            self._restart(offset)
        end = offset + length
        self._sending = True
        while self._next < end:
            item = self._ready.get()
            if isinstance(item, BaseException):
                raise item
            slot, n = item
            self._next += n
            yield memoryview(self._ring[slot])[:n]
            self._free.put(slot)  # sendall returned: the kernel has its own copy
        self._sending = False

    def _restart(self, offset: int) -> None:
        self.close()
        if offset > self.seen:  # a server never holds bytes we have not read
            raise ValueError(f"cannot resume at {offset}: only {self.seen} bytes were read")
        self._sending = False
        self._stop = threading.Event()
        self._free = queue.Queue()
        for slot in range(SLOTS):
            self._free.put(slot)
        self._ready = queue.Queue()
        self.stream.seek(self.base + offset)
        self._next = offset
        self._thread = threading.Thread(
            target=self._produce, args=(offset, self._stop, self._free, self._ready),
            name="drive-read-ahead", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def _produce(
        self, pos: int, stop: threading.Event, free: queue.Queue[int], ready: queue.Queue[Any]
    ) -> None:
        try:
            while pos < self.total and not stop.is_set():
                try:
                    slot = free.get(timeout=0.1)
                except queue.Empty:
                    continue
                buf = self._ring[slot]
                # Blocks end on request boundaries, so a body never takes part of a block.
                boundary = (pos // self.request_size + 1) * self.request_size
                want = min(len(buf), self.total - pos, boundary - pos)
                n = self._fill(memoryview(buf)[:want])
                if n < want:
                    raise SourceChanged(
                        f"The source ended at byte {pos + n} while being uploaded, but it had "
                        f"{self.total} bytes when the upload started; upload it again once "
                        "nothing writes to it.",
                        reason="sourceChanged",
                    )
                if pos + n > self.seen:
                    if self._digest is not None:
                        self._digest.update(memoryview(buf)[self.seen - pos : n])
                    self.seen = pos + n
                pos += n
                ready.put((slot, n))
        except BaseException as exc:  # raised in the sender
            ready.put(exc)

    def _fill(self, view: memoryview) -> int:
        got = 0
        # Files read straight into the ring; any other stream through its own read().
        raw_file = isinstance(self.stream, (io.BufferedReader, io.FileIO))
        readinto = self.stream.readinto if raw_file else None
        while got < len(view):
            if readinto is not None:
                n = readinto(view[got:])
            else:
                data = self.stream.read(len(view) - got)
                n = len(data)
                view[got : got + n] = data
            if not n:
                break
            got += n
        return got

    def close(self) -> None:
        """Stop reading ahead."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
