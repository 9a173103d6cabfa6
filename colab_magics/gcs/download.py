"""One object to one local file: ranged, resumable, verified, renamed only once verified.

Bytes go to a hidden temporary file beside the target, named by the object's generation
(``.NAME.gcs-GEN.part``), hashed as they are written. A dropped connection resumes with a
``Range`` request from the last byte written; a run that was killed resumes from the
temporary file on the next run, as long as the object has the same generation. The request
carries ``ifGenerationMatch``, so GCS refuses (412) to serve bytes of a newer generation; the
final hash check catches a change in any case. Only a verified file takes the final name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO

from colab_magics.drive.retry import Retrier, RetryPolicy
from colab_magics.gcs.client import GcsClient, GcsObject
from colab_magics.gcs.errors import (
    GcsError,
    GcsIntegrityError,
    GcsPreconditionFailed,
    GcsTransient,
    map_exception,
)
from colab_magics.gcs.hashes import ObjectHash
from colab_magics.progress import NO_PROGRESS, Callback
from colab_magics.sync.errors import SyncError, is_disk_full
from colab_magics.sync.fetch import Download, Get

RETRY = RetryPolicy(max_attempts=8, base_delay=0.5, max_delay=16.0)


def part_path(dest: str, obj: GcsObject) -> str:
    """Where ``obj`` is written while it downloads (one per generation)."""
    folder, name = os.path.split(dest)
    return os.path.join(folder, f".{name}.gcs-{obj.generation}.part")


class _Sink:
    """The file-like object the library streams into: write, hash, count, report."""

    def __init__(self, out: IO[bytes], digest: ObjectHash, progress: Callback) -> None:
        self.out = out
        self.digest = digest
        self.progress = progress
        self.written = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.digest.update(data)
        self.written += len(data)
        self.progress.relative_update(len(data))
        return len(data)


def _typed(exc: BaseException, what: str) -> Exception | None:
    error = map_exception(exc, what=what)
    return error if isinstance(error, GcsError) else None


def _transient(error: Exception) -> bool:
    return isinstance(error, GcsTransient)


def download(
    client: GcsClient,
    obj: GcsObject,
    dest: str | os.PathLike[str],
    *,
    progress: Callback = NO_PROGRESS,
    policy: RetryPolicy = RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Fetch ``obj`` to ``dest``; returns the bytes received (a resumed part not counted).

    Raises :class:`GcsIntegrityError` when the bytes do not hash to the object's crc32c or md5
    (:class:`ObjectHash`); then nothing is left under either name.
    """
    final = os.fspath(dest)
    folder = os.path.dirname(final)
    if folder:
        os.makedirs(folder, exist_ok=True)
    part = part_path(final, obj)
    digest = ObjectHash(obj.md5, obj.crc32c)
    progress.set_size(obj.size)
    have = _resume_from(part, obj.size)
    if have:
        digest.update_from_file(part, have)
        progress.relative_update(have)
    blob = client.blob(obj.bucket, obj.name)
    retrier = Retrier(policy, sleep=sleep, typed=_typed, retryable=_transient)
    failures = 0
    try:
        with open(part, "r+b" if have else "wb") as out:
            out.seek(have)
            out.truncate()
            sink = _Sink(out, digest, progress)
            while have + sink.written < obj.size:
                start = have + sink.written
                client.count()
                try:
                    blob.download_to_file(
                        sink,
                        start=start,
                        end=obj.size - 1,
                        raw_download=True,  # the stored bytes, not a gunzipped copy
                        checksum=None,  # ours covers the whole object, resumed parts included
                        if_generation_match=obj.generation,
                        retry=None,  # retried here, from the last byte written
                    )
                except Exception as exc:
                    error = map_exception(exc, what=obj.url)
                    if isinstance(error, GcsPreconditionFailed):
                        raise _changed(obj) from exc
                    if sink.written + have > obj.size:
                        raise error from (None if error is exc else exc)
                    # Bytes arrived before the cut: the next range starts afresh.
                    failures = 0 if have + sink.written > start else failures + 1
                    retrier.retry_or_raise(
                        exc, max(1, failures), what=obj.url, on_retry=progress.retry
                    )
                    continue
                if have + sink.written == start:
                    raise GcsTransient(f"{obj.url}: GCS sent no bytes at offset {start}")
        received = sink.written
        if have + received != obj.size or not digest.matches():
            os.unlink(part)
            raise _changed(obj, digest)
        os.replace(part, final)
    except (GcsIntegrityError, GcsPreconditionFailed):
        _remove(part)
        raise
    except OSError as exc:
        if is_disk_full(exc):
            _remove(part)  # a partial file on a full disk only keeps it full
        raise
    return received


def _resume_from(part: str, size: int) -> int:
    """Bytes of a previous run's temporary file to keep (0 when there is none or it is
    longer than the object, which a different object cannot be)."""
    try:
        have = os.path.getsize(part)
    except OSError:
        return 0
    return have if have <= size else 0


def _changed(obj: GcsObject, digest: ObjectHash | None = None) -> GcsIntegrityError:
    detail = (
        f"GCS says {digest.kind} {digest.expected}, the bytes received hash to {digest.hexdigest()}"
        if digest is not None
        else f"generation {obj.generation} is no longer the object's"
    )
    return GcsIntegrityError(
        f"Download of {obj.url} did not verify: {detail}. Nothing was written under the final "
        "name; the object probably changed while it was read: pull it again."
    )


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_bytes(client: GcsClient, obj: GcsObject) -> bytes:
    """The whole (small) object ``obj`` in memory, verified like a download."""
    digest = ObjectHash(obj.md5, obj.crc32c)
    client.count()
    try:
        data = client.blob(obj.bucket, obj.name).download_as_bytes(
            raw_download=True, checksum=None, if_generation_match=obj.generation
        )
    except Exception as exc:
        error = map_exception(exc, what=obj.url)
        raise (_changed(obj) if isinstance(error, GcsPreconditionFailed) else error) from exc
    digest.update(data)
    if len(data) != obj.size or not digest.matches():
        raise _changed(obj, digest)
    return data


def object_download(rel: str, obj: GcsObject, dest: str) -> Download:
    """``obj`` as an item of the store-neutral :func:`colab_magics.sync.fetch.fetch`."""
    return Download(rel, dest, obj.size, obj.md5, obj.crc32c, remote=obj)


def object_get(client: GcsClient) -> Get:
    """The :data:`colab_magics.sync.fetch.Get` for objects of ``client``."""

    def get(d: Download, progress: Callback) -> object:
        if os.path.isdir(d.dest):
            raise SyncError(f"a local folder is in the way of the object {d.remote.url}")
        received = download(client, d.remote, d.dest, progress=progress.branched(d.rel))
        progress.file_done(d.rel)
        return received

    return get
