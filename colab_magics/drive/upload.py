"""Uploads that are only successful when Drive's md5 equals the md5 of the bytes we read.

Small sources go up in one multipart request; larger ones through the resumable protocol
(``resumable``), spoken on the authorized Http rather than through ``MediaIoBaseUpload`` so
that after a failure it asks the session where it stands and resends from the server's
``Range``, honours ``Retry-After``, and reports confirmed bytes as progress. Each source byte
is read and hashed once; the unconfirmed part of the current chunk stays in memory for
resending, so memory is bounded by the chunk size and non-seekable streams resume too.

Chunk size: 16 MiB by default. Larger chunks mean fewer round trips (each costs Drive a
commit), smaller ones less memory (about four chunks per transfer in flight); a failed chunk
costs one chunk whatever its size, so the resent fraction under faults does not depend on it.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable
from typing import IO, Any

from googleapiclient.http import MediaInMemoryUpload

from colab_magics.drive.errors import (
    DriveConflictError,
    DriveError,
    DriveIntegrityError,
    DriveNotFound,
    map_exception,
)
from colab_magics.drive.model import FILE_FIELDS, DriveFile, UploadTarget
from colab_magics.drive.resumable import ResumableUpload, UploadSessionLost
from colab_magics.drive.source import SourceReader, remaining_size
from colab_magics.drive.transport import Transport
from colab_magics.progress import NO_PROGRESS, Callback

UNIT = 256 * 1024
"""Drive wants non-final resumable chunks in multiples of 256 KiB."""
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
DEFAULT_MULTIPART_LIMIT = 5 * 1024 * 1024
SESSION_RESTARTS = 2
"""How many times an upload whose session Drive forgot starts again from byte 0."""

Source = "str | os.PathLike[str] | IO[bytes] | bytes"


@dataclasses.dataclass(frozen=True)
class UploadResult:
    """The file Drive confirmed, and what it took: bytes sent (resends included), requests."""

    file: DriveFile
    bytes_sent: int
    requests: int

    @property
    def bytes_resent(self) -> int:
        return max(0, self.bytes_sent - (self.file.size or 0))


def chunk_size_ok(chunk_size: int) -> int:
    if chunk_size <= 0 or chunk_size % UNIT:
        raise ValueError(f"chunk_size must be a positive multiple of 256 KiB, got {chunk_size}")
    return chunk_size


def upload(
    transport: Transport,
    source: Any,
    target: UploadTarget,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    multipart_limit: int = DEFAULT_MULTIPART_LIMIT,
    expected_md5: str | None = None,
    progress: Callback = NO_PROGRESS,
    delete: Callable[[str], None] | None = None,
) -> UploadResult:
    """Send ``source`` (a path, a binary stream or bytes) to ``target`` and verify its md5.

    ``expected_md5``, when given, must also match (e.g. the md5 a checkpoint computed while
    serializing). On a mismatch a newly created file is deleted (with ``delete``) so nothing
    half-right is left looking complete, and :class:`DriveIntegrityError` is raised.
    """
    chunk_size = chunk_size_ok(chunk_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _upload_stream(
            transport, io.BytesIO(bytes(source)), target, chunk_size, multipart_limit,
            expected_md5, progress, delete,
        )  # fmt: skip
    if isinstance(source, (str, os.PathLike)):
        if target.name is None and target.file_id is None:
            target.name = os.path.basename(os.fspath(source))
        with open(source, "rb") as stream:
            return _upload_stream(
                transport, stream, target, chunk_size, multipart_limit,
                expected_md5, progress, delete,
            )  # fmt: skip
    return _upload_stream(
        transport, source, target, chunk_size, multipart_limit, expected_md5, progress, delete
    )


def _upload_stream(
    transport: Transport,
    stream: IO[bytes],
    target: UploadTarget,
    chunk_size: int,
    multipart_limit: int,
    expected_md5: str | None,
    progress: Callback,
    delete: Callable[[str], None] | None,
) -> UploadResult:
    reader = SourceReader(stream)
    total = remaining_size(stream)
    start = stream.tell() if total is not None else None
    requests_before = transport.requests
    # Read one byte past the limit: a source that fits goes up in one multipart request.
    head = reader.read(multipart_limit + 1)
    if len(head) <= multipart_limit:
        progress.set_size(len(head))
        file = _multipart(transport, head, target, progress)
        sent = len(head)
    else:
        if total is not None:
            progress.set_size(total)
        sent = 0
        for restart in range(SESSION_RESTARTS + 1):
            # The first block completes the first chunk, so later blocks are whole chunks.
            reader.prefetch(chunk_size, max(UNIT, chunk_size - len(head)))
            session = ResumableUpload(transport, reader, target, chunk_size, total, progress)
            try:
                file, session_sent = session.run(head)
                sent += session_sent
                break
            except UploadSessionLost:
                # Only a seekable source can be read again from its start.
                if start is None or restart == SESSION_RESTARTS:
                    raise
                sent += session.sent
                progress.relative_update(-session.confirmed)
            finally:
                reader.close()
            stream.seek(start)
            reader = SourceReader(stream)
            head = reader.read(multipart_limit + 1)
    _verify(reader.md5.hexdigest(), expected_md5, file, target, delete)
    return UploadResult(file, sent, transport.requests - requests_before)


def _verify(
    ours: str,
    expected: str | None,
    file: DriveFile,
    target: UploadTarget,
    delete: Callable[[str], None] | None,
) -> None:
    wanted = expected or ours
    if file.md5 == ours and file.md5 == wanted:
        return
    if target.file_id is None and delete is not None:
        # A new file with the wrong bytes must not stay behind looking like a good upload.
        try:
            delete(file.id)
        except DriveNotFound:
            pass
    kept = (
        "the new file was deleted"
        if target.file_id is None
        else "the file now holds unverified content"
    )
    raise DriveIntegrityError(
        f"Upload of {file.name!r} did not verify: Drive has md5 {file.md5}, "
        f"we sent {ours}" + (f", expected {expected}" if expected else "") + f"; {kept}. "
        "Upload it again; if it keeps failing the source changed while being read.",
        reason="md5Mismatch",
    )


def _multipart(
    transport: Transport, data: bytes, target: UploadTarget, progress: Callback
) -> DriveFile:
    files = transport.files
    media_type = target.content_type

    def make_request() -> Any:
        media = MediaInMemoryUpload(data, mimetype=media_type, resumable=False)
        if target.file_id is not None:
            return files.update(
                fileId=target.file_id, body=target.metadata(), media_body=media,
                fields=FILE_FIELDS,
            )  # fmt: skip
        return files.create(body=target.metadata(), media_body=media, fields=FILE_FIELDS)

    what = target.name or target.file_id or ""
    if target.file_id is not None:
        data_out = transport.execute(make_request, what=what, on_retry=progress.retry)
    else:
        data_out = create_with_id(
            transport, target.new_id, make_request, what=what, on_retry=progress.retry
        )
    progress.relative_update(len(data))
    return DriveFile.from_api(data_out)


def create_with_id(
    transport: Transport,
    new_id: str | None,
    make_request: Callable[[], Any],
    *,
    what: str = "",
    on_retry: Callable[[DriveError, float], None] | None = None,
) -> dict[str, Any]:
    """Execute a create whose body carries the pre-generated ``new_id``, retried safely.

    A retry first looks the id up: the lost answer of the previous attempt may have been a
    success. An id already in use (409) after our own attempt is that same file.
    """
    tried = [False]

    def attempt() -> Any:
        if tried[0] and new_id:
            existing = _get_if_exists(transport, new_id)
            if existing is not None:
                return existing
        tried[0] = True
        transport.count()
        try:
            return make_request().execute(http=transport.http, num_retries=0)
        except Exception as exc:
            if new_id and isinstance(map_exception(exc), DriveConflictError):
                existing = _get_if_exists(transport, new_id)
                if existing is not None:
                    return existing
            raise

    return transport.retrier.call(attempt, what=what, on_retry=on_retry)


def _get_if_exists(transport: Transport, file_id: str) -> dict[str, Any] | None:
    try:
        transport.count()
        return transport.files.get(fileId=file_id, fields=FILE_FIELDS).execute(
            http=transport.http, num_retries=0
        )
    except Exception as exc:  # only "not there" is an answer here
        if isinstance(map_exception(exc), DriveNotFound):
            return None
        raise
