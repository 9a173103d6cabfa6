"""Downloads that never leave a partial file under the final name.

Bytes are fetched in ranged ``alt=media`` requests (memory bounded by the chunk size, since
httplib2 holds a whole response in memory) into a temporary file in a staging folder beside the
target (:mod:`colab_magics.drive.staging`: no name a Drive file could have), hashed as they are
written; after a failure the next request starts at the last byte written. Only when the md5
equals Drive's ``md5Checksum`` is the temp file renamed to the final name.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import queue
import shutil
import threading
from typing import IO

from colab_magics.drive.errors import (
    DriveError,
    DriveIntegrityError,
    DriveNotDownloadable,
    map_exception,
)
from colab_magics.drive.model import FILE_FIELDS, DriveFile
from colab_magics.drive.progress import NO_PROGRESS, Callback
from colab_magics.drive.staging import Staging
from colab_magics.drive.transport import Transport

DEFAULT_DOWNLOAD_CHUNK = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    """The file fetched, where it now is, and bytes received (refetches included)."""

    file: DriveFile
    path: str | None
    bytes_received: int
    requests: int


def get_file(transport: Transport, file_id: str) -> DriveFile:
    """Metadata of one file by id (retried)."""
    files = transport.files
    data = transport.execute(lambda: files.get(fileId=file_id, fields=FILE_FIELDS), what=file_id)
    return DriveFile.from_api(data)


def download_to_path(
    transport: Transport,
    file: DriveFile,
    path: str | os.PathLike[str],
    *,
    chunk_size: int = DEFAULT_DOWNLOAD_CHUNK,
    progress: Callback = NO_PROGRESS,
    staging: Staging | None = None,
) -> DownloadResult:
    """Fetch ``file`` to ``path`` through a temporary file; renamed only once the md5 verifies.

    ``staging`` is the operation's staging folder (on the file system of ``path``); without
    one, a staging folder is made beside ``path`` for this download alone.
    """
    final = os.fspath(path)
    folder = os.path.dirname(final)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if staging is None:
        with Staging(folder, avoid={os.path.basename(final)}) as own:
            return download_to_path(
                transport, file, final, chunk_size=chunk_size, progress=progress, staging=own
            )
    requests_before = transport.requests
    temp, out = staging.create()
    try:
        # No fsync: the rename after the md5 check is what keeps a partial file from the final
        # name; a killed process leaves its writes in the page cache, and a runtime whose
        # machine dies loses its disk with it. fsync would only slow every download.
        with out:
            received = _fetch(transport, file, out, chunk_size, progress)
        try:
            os.replace(temp, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _move_across(temp, final)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return DownloadResult(file, final, received, transport.requests - requests_before)


def _move_across(temp: str, final: str) -> None:
    """``final``'s folder is on another file system than the staging folder (a mount point
    inside a pulled tree): copy into a staging folder beside it, then rename there."""
    with Staging(os.path.dirname(final), avoid={os.path.basename(final)}) as near:
        moved, out = near.create()
        with out, open(temp, "rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(moved, final)
    os.unlink(temp)


def download_to_stream(
    transport: Transport,
    file: DriveFile,
    out: IO[bytes],
    *,
    chunk_size: int = DEFAULT_DOWNLOAD_CHUNK,
    progress: Callback = NO_PROGRESS,
) -> DownloadResult:
    """Fetch ``file`` into a writable stream; raises :class:`DriveIntegrityError` on a bad md5
    (the caller owns the stream, so it must discard what was written)."""
    requests_before = transport.requests
    received = _fetch(transport, file, out, chunk_size, progress)
    return DownloadResult(file, None, received, transport.requests - requests_before)


class _WriteBehind:
    """Writes and hashes chunks on two background threads while the next one downloads.

    Receiving, hashing and writing overlap, so a download runs at the slowest of the three
    rather than their sum. One chunk waits per stage at most: memory stays within about five
    chunks. A write error (disk full) is raised in the downloading thread at the next
    :meth:`put` or :meth:`finish`.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.md5 = hashlib.md5()
        self._error: BaseException | None = None
        self._stages = [
            self._stage(out.write, "drive-write-behind"),
            self._stage(self.md5.update, "drive-hash-behind"),
        ]

    def _stage(self, consume, name: str) -> tuple[queue.Queue[bytes | None], threading.Thread]:
        inbox: queue.Queue[bytes | None] = queue.Queue(maxsize=1)

        def run() -> None:
            while True:
                data = inbox.get()
                if data is None:
                    return
                if self._error is None:
                    try:
                        consume(data)
                    except BaseException as exc:  # raised in the downloading thread
                        self._error = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return inbox, thread

    def put(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        for inbox, _ in self._stages:
            inbox.put(data)

    def _stop(self) -> None:
        for inbox, thread in self._stages:
            inbox.put(None)
            thread.join()

    def finish(self) -> str:
        """Wait for every write; the md5 of everything written."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self.md5.hexdigest()

    def abandon(self) -> None:
        self._stop()


class _WriteInline:
    """Writes and hashes in the downloading thread: for a file of one chunk there is nothing
    to overlap, and starting two threads per file made pulls of many small files slow."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.md5 = hashlib.md5()

    def put(self, data: bytes) -> None:
        self.out.write(data)
        self.md5.update(data)

    def finish(self) -> str:
        return self.md5.hexdigest()

    def abandon(self) -> None:
        pass


def _fetch(
    transport: Transport, file: DriveFile, out: IO[bytes], chunk_size: int, progress: Callback
) -> int:
    if file.is_native:
        raise DriveNotDownloadable(
            f"{file.name!r} is a Google-native file ({file.mime_type}): it has no bytes to "
            "download, only exports (File > Download in Drive, or files.export).",
            reason="fileNotDownloadable",
        )
    if file.is_folder or file.md5 is None:
        raise DriveError(f"{file.name!r} has no downloadable content (a folder).")
    size = file.size or 0
    progress.set_size(size)
    url = f"{transport.files_url}/{file.id}?alt=media"
    writer = _WriteBehind(out) if size > chunk_size else _WriteInline(out)
    try:
        received = _fetch_into(transport, file, url, size, writer, chunk_size, progress)
        digest = writer.finish()
    except BaseException:
        writer.abandon()
        raise
    if digest != file.md5:
        raise DriveIntegrityError(
            f"Download of {file.name!r} did not verify: Drive says md5 {file.md5}, the bytes "
            f"received hash to {digest}. Nothing was written under the final name; download "
            "it again (the file may have changed on Drive while it was read).",
            reason="md5Mismatch",
        )
    return received


def _fetch_into(
    transport: Transport,
    file: DriveFile,
    url: str,
    size: int,
    writer: _WriteBehind | _WriteInline,
    chunk_size: int,
    progress: Callback,
) -> int:
    written = 0
    received = 0
    failures = 0
    retrier = transport.retrier
    while written < size:
        end = min(size, written + chunk_size) - 1
        headers = {"Range": f"bytes={written}-{end}"}
        try:
            resp, content = transport.send(
                "GET", url, headers=headers, ok=(200, 206), what=file.name or file.id
            )
        except Exception as exc:  # classified: retry or raise
            failures += 1
            error = map_exception(exc, what=file.name or file.id)
            if not isinstance(error, DriveError):
                raise
            delay = retrier.next_delay(error, failures)
            if delay is None:
                raise error from (None if error is exc else exc)
            retrier.note_retry(error, delay, progress.retry)
            retrier.sleep(delay)
            continue
        failures = 0
        received += len(content)
        if resp.status == 200:
            # The server ignored Range and sent it all: keep what we do not have yet.
            content = content[written : end + 1]
        expected = end + 1 - written
        if len(content) > expected:
            content = content[:expected]
        if not content:
            raise DriveError(f"Drive sent no bytes for {file.name!r} at offset {written}.")
        writer.put(content)
        written += len(content)
        progress.relative_update(len(content))
    return received
