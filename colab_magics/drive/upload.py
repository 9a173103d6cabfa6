"""Uploads that are only successful when Drive's checksum equals the digest of what we read.

Small sources go up in one multipart request; larger ones through the resumable protocol
(``resumable``), spoken on the authorized Http rather than through ``MediaIoBaseUpload`` so
that after a failure it asks the session where it stands and resends from the server's
``Range``, honours ``Retry-After``, and reports confirmed bytes as progress.

A seekable source (a file) is streamed: each request's body is read from it into a ring of
reused buffers and hashed on a thread while the previous buffer is on the wire, so the
upload costs about what the slowest of disk, hash and network costs. The hash is the one of
Drive's checksums this CPU computes fastest (:mod:`.checksum`), or none when the caller
already has the md5 (a checkpoint hashes its blobs as it writes them): Drive's md5 against
that catches every difference a second pass would. Nothing is held for resending: after a
cut the bytes Drive lacks are read again, and only bytes never read before are hashed, so a
source that changed shows up as a digest that differs from Drive's (a file whose size or
mtime changed during the upload is refused as well). Requests are 128 MiB: each costs Drive a
commit and a round trip, and a cut costs only what Drive did not keep.

A stream that cannot be read again is read and md5-hashed once (md5 is the checksum every
Drive file has), and the unconfirmed part of the current chunk (16 MiB) stays in memory for
resending, so memory is bounded by the chunk size and such streams resume too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import stat
from collections.abc import Callable
from typing import IO, Any

from googleapiclient.http import MediaInMemoryUpload

from colab_magics.drive.checksum import Checksum, fastest_first
from colab_magics.drive.errors import (
    DriveConflictError,
    DriveError,
    DriveIntegrityError,
    DriveNotFound,
    map_exception,
)
from colab_magics.drive.model import FILE_FIELDS, DriveFile, UploadTarget
from colab_magics.drive.resumable import ResumableUpload, UploadSessionLost
from colab_magics.drive.source import FileSource, SourceReader, remaining_size
from colab_magics.drive.transport import Transport
from colab_magics.progress import NO_PROGRESS, Callback

UNIT = 256 * 1024
"""Drive wants non-final resumable chunks in multiples of 256 KiB."""
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
"""Request size for a stream that cannot be read again: its unconfirmed bytes stay in memory."""
FILE_REQUEST_SIZE = 128 * 1024 * 1024
"""Request size for a seekable source, which is streamed from the source and never held."""
DEFAULT_MULTIPART_LIMIT = 5 * 1024 * 1024
REHASH_BLOCK = 4 * 1024 * 1024
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
    chunk_size: int | None = None,
    multipart_limit: int = DEFAULT_MULTIPART_LIMIT,
    expected_md5: str | None = None,
    progress: Callback = NO_PROGRESS,
    delete: Callable[[str], None] | None = None,
) -> UploadResult:
    """Send ``source`` (a path, a binary stream or bytes) to ``target`` and verify it.

    ``expected_md5``, when given, must also match (e.g. the md5 a checkpoint computed while
    serializing). ``chunk_size`` is the bytes per request (None: :data:`FILE_REQUEST_SIZE`
    for a seekable source, :data:`DEFAULT_CHUNK_SIZE` for a stream). On a mismatch, or when
    a file changed while it was read, a newly created file is deleted (with ``delete``) so
    nothing half-right is left looking complete, and :class:`DriveIntegrityError` is raised.
    """
    if chunk_size is not None:
        chunk_size_ok(chunk_size)
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
    chunk_size: int | None,
    multipart_limit: int,
    expected_md5: str | None,
    progress: Callback,
    delete: Callable[[str], None] | None,
) -> UploadResult:
    total = remaining_size(stream)
    requests_before = transport.requests
    before = _file_state(stream)
    if total is not None and total > multipart_limit:
        size = chunk_size or FILE_REQUEST_SIZE
        start = stream.tell()
        algorithm = None if expected_md5 else fastest_first()[0]
        file, sent, ours = _resumable_file(
            transport, stream, target, size, total, algorithm, progress
        )
        if ours is not None and file.checksum(ours.algorithm) is None:
            # Drive did not give the checksum we computed ("if available"): read it again
            # for one it did give.
            ours = _rehash(stream, start, total, file.verifiable_by)
    else:
        size = chunk_size or DEFAULT_CHUNK_SIZE
        file, sent, ours = _from_stream(
            transport, stream, target, size, multipart_limit, total, progress
        )
    if before is not None and _file_state(stream) != before:
        _discard(file, target, delete)
        raise DriveIntegrityError(
            f"{file.name!r} changed while it was being uploaded, so Drive may hold a mix of "
            f"old and new bytes; {_kept(target)}. Upload it again once nothing writes to it.",
            reason="sourceChanged",
        )
    _verify(ours, expected_md5, file, target, delete)
    return UploadResult(file, sent, transport.requests - requests_before)


def _file_state(stream: IO[bytes]) -> tuple[int, int] | None:
    """Size and modification time of a regular file behind ``stream`` (None: not a file)."""
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def _resumable_file(
    transport: Transport,
    stream: IO[bytes],
    target: UploadTarget,
    chunk_size: int,
    total: int,
    algorithm: str | None,
    progress: Callback,
) -> tuple[DriveFile, int, Checksum | None]:
    """A seekable source: request bodies streamed from it (hashed with ``algorithm`` unless
    None), re-read after a cut."""
    progress.set_size(total)
    source = FileSource(stream, total, chunk_size, algorithm)
    sent = 0
    try:
        for restart in range(SESSION_RESTARTS + 1):
            session = ResumableUpload(transport, source, target, chunk_size, total, progress)
            try:
                file, session_sent = session.run(b"")
                return file, sent + session_sent, source.checksum()
            except UploadSessionLost:
                if restart == SESSION_RESTARTS:
                    raise
                sent += session.sent
                progress.relative_update(-session.confirmed)
    finally:
        source.close()
    raise AssertionError("unreachable")


def _from_stream(
    transport: Transport,
    stream: IO[bytes],
    target: UploadTarget,
    chunk_size: int,
    multipart_limit: int,
    total: int | None,
    progress: Callback,
) -> tuple[DriveFile, int, Checksum]:
    """A small or unseekable source, read once; unconfirmed bytes are kept for resending."""
    reader = SourceReader(stream)
    start = stream.tell() if total is not None else None
    # Read one byte past the limit: a source that fits goes up in one multipart request.
    head = reader.read(multipart_limit + 1)
    if len(head) <= multipart_limit:
        progress.set_size(len(head))
        return _multipart(transport, head, target, progress), len(head), reader.checksum()
    if total is not None:
        progress.set_size(total)
    sent = 0
    for restart in range(SESSION_RESTARTS + 1):
        # The first block completes the first chunk, so later blocks are whole chunks.
        reader.prefetch(chunk_size, max(UNIT, chunk_size - len(head)))
        session = ResumableUpload(transport, reader, target, chunk_size, total, progress)
        try:
            file, session_sent = session.run(head)
            return file, sent + session_sent, reader.checksum()
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
    raise AssertionError("unreachable")


def _rehash(stream: IO[bytes], start: int, total: int, like: Checksum | None) -> Checksum | None:
    """The digest of ``total`` bytes of ``stream`` from ``start``, in ``like``'s algorithm."""
    if like is None:
        return None
    digest = hashlib.new(like.algorithm)
    stream.seek(start)
    left = total
    while left and (data := stream.read(min(left, REHASH_BLOCK))):
        digest.update(data)
        left -= len(data)
    return Checksum(like.algorithm, digest.hexdigest())


def _verify(
    ours: Checksum | None,
    expected_md5: str | None,
    file: DriveFile,
    target: UploadTarget,
    delete: Callable[[str], None] | None,
) -> None:
    claims = [("we sent", ours)] if ours is not None else []
    if expected_md5 is not None:
        claims.append(("expected", Checksum("md5", expected_md5)))
    wrong = [(who, c) for who, c in claims if file.checksum(c.algorithm) != c]
    if claims and not wrong:
        return
    _discard(file, target, delete)
    said = (
        "; ".join(
            f"Drive has {file.checksum(c.algorithm) or f'no {c.algorithm}'}, {who} {c.hexdigest}"
            for who, c in wrong
        )
        or "Drive gave no checksum to compare with"
    )
    raise DriveIntegrityError(
        f"Upload of {file.name!r} did not verify: {said}; {_kept(target)}. "
        "Upload it again; if it keeps failing the source changed while being read.",
        reason="checksumMismatch",
    )


def _discard(file: DriveFile, target: UploadTarget, delete: Callable[[str], None] | None) -> None:
    """A new file with the wrong bytes must not stay behind looking like a good upload."""
    if target.file_id is None and delete is not None:
        try:
            delete(file.id)
        except DriveNotFound:
            pass


def _kept(target: UploadTarget) -> str:
    if target.file_id is None:
        return "the new file was deleted"
    return "the file now holds unverified content"


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
