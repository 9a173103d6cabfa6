"""A big download as a pipeline: receive, write and hash overlap, in order, in bounded memory.

One thread receives the bytes still missing (one ranged GET, read with ``readinto``) into a
ring of reused buffers; a second hashes each full buffer while the caller's thread writes it.
Socket reads, file writes and ``hashlib`` (on buffers over 2 KiB) all release the GIL, so a
verified download costs about what the slowest of network, disk and hash costs, not their sum.
Memory is the ring: :data:`SLOTS` buffers of at most :data:`BLOCK` bytes.

After a cut connection the receiver asks again from the first byte it lacks. An error in any
stage stops the others and is raised in the caller; nothing waits on a stage that has died.
"""

from __future__ import annotations

import hashlib
import http.client
import queue
import threading
from collections.abc import Callable
from typing import IO

from colab_magics.drive.errors import DriveError
from colab_magics.drive.model import DriveFile
from colab_magics.drive.stream import RangeResponse, get_range
from colab_magics.drive.transport import Transport
from colab_magics.progress import Callback

SLOTS = 4
"""Buffers in the ring: one receiving, one being written and hashed, two queued."""
BLOCK = 4 * 1024 * 1024
"""Largest buffer: big enough that hashing and writes release the GIL for long stretches, small
enough that hashing starts soon after the first bytes arrive."""
_POLL = 0.1  # seconds between checks for a stopped pipeline while waiting for a free buffer


class Pipeline:
    """Fetch ``file`` (``url``: its ``alt=media`` address) into ``out``, feeding ``digest`` the
    bytes written; :meth:`run` returns the bytes received (refetches included)."""

    def __init__(
        self,
        transport: Transport,
        file: DriveFile,
        url: str,
        out: IO[bytes],
        chunk_size: int,
        digest: hashlib._Hash,
        progress: Callback,
    ) -> None:
        self.transport = transport
        self.file = file
        self.url = url
        self.out = out
        self.progress = progress
        self.size = file.size or 0
        self.what = file.name or file.id
        block = max(1, min(chunk_size, BLOCK))
        self._ring = [bytearray(block) for _ in range(SLOTS)]
        self._free: queue.Queue[int] = queue.Queue()
        for slot in range(SLOTS):
            self._free.put(slot)
        self._to_write: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._to_hash: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._users = [0] * SLOTS  # stages still using each buffer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._response: RangeResponse | None = None
        self._digest = digest
        self.received = 0

    def run(self) -> int:
        receiver = self._thread(self._receive, "drive-receive")
        hasher = self._thread(
            lambda: self._consume(self._to_hash, self._digest.update), "drive-hash"
        )
        try:
            self._consume(self._to_write, self._write)
        except BaseException as exc:  # KeyboardInterrupt in the caller: stop the others
            self._fail(exc)
            # Not waiting long: a receiver still connecting ends at its timeout, on its own
            # (it only ever writes into the ring).
            receiver.join(_POLL * 10)
            hasher.join(_POLL * 10)
            raise
        receiver.join()
        hasher.join()
        if self._error is not None:
            raise self._error
        return self.received

    # -- stages -----------------------------------------------------------------------------

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # raised in the caller by run()
                self._fail(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def _receive(self) -> None:
        try:
            self._receive_all()
        except BaseException as exc:  # raised in the caller by run(), after the drain
            # The buffers handed on before the failure are still written and hashed (the
            # others are not stopped): bytes that arrived are never thrown away.
            with self._lock:
                if self._error is None:
                    self._error = exc
        finally:
            for inbox in (self._to_write, self._to_hash):
                inbox.put(None)

    def _receive_all(self) -> None:
        pos = 0  # bytes of the file handed on or in the buffer being filled
        slot: int | None = None
        filled = 0
        failures = 0
        while pos < self.size:
            start = pos
            try:
                response = self._open(pos)
                try:
                    while pos < self.size:
                        if slot is None:
                            slot, filled = self._take_slot(), 0
                            if slot is None:
                                return  # stopped
                        buffer = memoryview(self._ring[slot])
                        want = min(len(buffer), filled + self.size - pos)
                        n = response.readinto(buffer[filled:want])
                        if not n:
                            raise http.client.IncompleteRead(b"", self.size - pos)
                        filled += n
                        pos += n
                        self.received += n
                        if filled == want:
                            self._hand_on(slot, filled)
                            slot = None
                finally:
                    self._response = None
                    response.close()
            except Exception as exc:  # a cut, a timeout, an error status: retry or raise
                if self._stop.is_set():
                    return
                failures = 1 if pos > start else failures + 1
                self.transport.retrier.retry_or_raise(
                    exc, failures, what=self.what, on_retry=self.progress.retry
                )

    def _open(self, pos: int) -> RangeResponse:
        response = get_range(self.transport, self.url, pos, self.size - 1, what=self.what)
        self._response = response
        if self._stop.is_set():
            response.abort()
        try:
            if response.start > pos:
                raise DriveError(f"Drive answered from byte {response.start} of {self.what!r}.")
            skip = pos - response.start  # the server ignored Range: drop what we have
            scratch = memoryview(bytearray(min(skip, BLOCK) or 1))
            while skip:
                n = response.readinto(scratch[: min(skip, len(scratch))])
                if not n:
                    raise http.client.IncompleteRead(b"", skip)
                self.received += n
                skip -= n
        except BaseException:
            self._response = None
            response.close()
            raise
        return response

    def _take_slot(self) -> int | None:
        while not self._stop.is_set():
            try:
                return self._free.get(timeout=_POLL)
            except queue.Empty:
                continue
        return None

    def _hand_on(self, slot: int, n: int) -> None:
        with self._lock:
            self._users[slot] = 2
        self._to_write.put((slot, n))
        self._to_hash.put((slot, n))

    def _consume(self, inbox: queue.Queue[tuple[int, int] | None], use: Callable) -> None:
        """Apply ``use`` to each buffer in order until the receiver is done; after a failure
        anywhere, only hand buffers back (so the receiver never waits on a dead stage)."""
        while (item := inbox.get()) is not None:
            slot, n = item
            try:
                if not self._stop.is_set():
                    use(memoryview(self._ring[slot])[:n])
            finally:
                with self._lock:
                    self._users[slot] -= 1
                    if not self._users[slot]:
                        self._free.put(slot)

    def _write(self, data: memoryview) -> None:
        self.out.write(data)
        self.progress.relative_update(len(data))

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
        self._stop.set()
        response = self._response
        if response is not None:
            response.abort()
