"""Downloads that never leave a partial file under the final name.

Bytes go into a temporary file in a staging folder beside the target
(:mod:`colab_magics.drive.staging`: no name a Drive file could have), hashed while they arrive
(:mod:`colab_magics.drive.pipeline`: receiving, writing and hashing overlap, in a few reused
buffers); after a failure the next ranged request starts at the last byte received.
Only when the digest equals Drive's checksum is the temp file renamed to the final name (of
Drive's md5, sha1 and sha256, the one this CPU computes fastest: :mod:`.checksum`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import shutil
from typing import IO

from colab_magics.drive.errors import DriveError, DriveIntegrityError, DriveNotDownloadable
from colab_magics.drive.model import FILE_FIELDS, DriveFile
from colab_magics.drive.pipeline import Pipeline
from colab_magics.drive.staging import Staging
from colab_magics.drive.transport import Transport
from colab_magics.progress import NO_PROGRESS, Callback

DEFAULT_DOWNLOAD_CHUNK = 16 * 1024 * 1024
"""A file up to this size comes in one request on the thread's kept-alive connection; a bigger
one streams through the pipeline, in buffers of at most this size (and of ``pipeline.BLOCK``)."""


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
    """Fetch ``file`` to ``path`` through a temporary file; renamed only once it verifies.

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
    """Fetch ``file`` into a writable stream; raises :class:`DriveIntegrityError` when the bytes
    do not match Drive's checksum (the caller owns the stream, so it must discard them)."""
    requests_before = transport.requests
    received = _fetch(transport, file, out, chunk_size, progress)
    return DownloadResult(file, None, received, transport.requests - requests_before)


def _fetch(
    transport: Transport, file: DriveFile, out: IO[bytes], chunk_size: int, progress: Callback
) -> int:
    if file.is_native:
        raise DriveNotDownloadable(
            f"{file.name!r} is a Google-native file ({file.mime_type}): it has no bytes to "
            "download, only exports (File > Download in Drive, or files.export).",
            reason="fileNotDownloadable",
        )
    if file.is_folder:
        raise DriveError(f"{file.name!r} is a folder: it has no content to download.")
    expected = file.verifiable_by
    if expected is None:
        raise DriveIntegrityError(
            f"Drive gave no checksum for {file.name!r}, so a download could not be verified.",
            reason="noChecksum",
        )
    size = file.size or 0
    progress.set_size(size)
    url = f"{transport.files_url}/{file.id}?alt=media"
    digest = hashlib.new(expected.algorithm)
    if size > chunk_size:
        received = Pipeline(transport, file, url, out, chunk_size, digest, progress).run()
    else:
        received = _fetch_whole(transport, file, url, out, digest, progress)
    if digest.hexdigest() != expected.hexdigest:
        raise DriveIntegrityError(
            f"Download of {file.name!r} did not verify: Drive says {expected}, the bytes "
            f"received hash to {digest.hexdigest()}. Nothing was written under the final name; "
            "download it again (the file may have changed on Drive while it was read).",
            reason="checksumMismatch",
        )
    return received


def _fetch_whole(
    transport: Transport,
    file: DriveFile,
    url: str,
    out: IO[bytes],
    digest: hashlib._Hash,
    progress: Callback,
) -> int:
    """A file of one chunk at most: one request on the thread's kept-alive connection (a
    new connection per small file would cost a TLS handshake each), written and hashed here."""
    size = file.size or 0
    received = 0
    failures = 0
    what = file.name or file.id
    while size:
        try:
            _, content = transport.send(
                "GET", url, headers={"Range": f"bytes=0-{size - 1}"}, ok=(200, 206), what=what
            )
        except Exception as exc:  # classified: retry or raise
            failures += 1
            transport.retrier.retry_or_raise(exc, failures, what=what, on_retry=progress.retry)
            continue
        received += len(content)
        content = content[:size]
        if len(content) < size:
            raise DriveError(f"Drive sent {len(content)} of {size} bytes of {what!r}.")
        out.write(content)
        digest.update(content)
        progress.relative_update(size)
        break
    return received
