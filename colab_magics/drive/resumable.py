"""The resumable upload protocol, spoken on the authorized Http.

Initiate (``uploadType=resumable`` -> ``Location``), then PUT chunks with ``Content-Range``;
a 308's ``Range`` says how much the server kept (Drive, and the emulator, may keep less than
a chunk). After a failure the session is asked where it stands (``Content-Range: bytes */N``)
and the upload continues from there, resending only what the server does not hold.
"""

from __future__ import annotations

import json
from typing import Any

from colab_magics.drive.errors import DriveError, DriveNotFound, map_exception
from colab_magics.drive.model import FILE_FIELDS, DriveFile, UploadTarget
from colab_magics.drive.source import FileSource, SourceChanged, SourceReader
from colab_magics.drive.transport import Transport
from colab_magics.progress import Callback


class UploadSessionLost(DriveError):
    """The resumable session is gone (404): only a new upload from byte 0 can succeed."""


def _content_range_total(total: int | None) -> str:
    return "*" if total is None else str(total)


def _committed(resp: Any) -> int:
    """Bytes the server holds, from a 308's ``Range: bytes=0-N`` (none: 0)."""
    value = resp.get("range")
    if not value:
        return 0
    return int(value.rsplit("-", 1)[1]) + 1


class ResumableUpload:
    """One resumable session: initiate, send chunks, and on failure query and resume."""

    def __init__(
        self,
        transport: Transport,
        reader: SourceReader | FileSource,
        target: UploadTarget,
        chunk_size: int,
        total: int | None,
        progress: Callback,
    ) -> None:
        self.t = transport
        self.reader = reader
        self.target = target
        self.chunk_size = chunk_size
        self.total = total
        self.progress = progress
        self.what = target.name or target.file_id or ""
        self.sent = 0
        self.confirmed = 0
        """Bytes the server confirmed (and progress was told of) so far."""

    def run(self, head: bytes) -> tuple[DriveFile, int]:
        """Send ``head`` and then the rest of the source; the file Drive made and bytes sent."""
        if isinstance(self.reader, FileSource):
            return self._run_file(self.reader)
        assert isinstance(self.reader, SourceReader)
        session = self._initiate()
        pending = head  # source bytes from ``offset`` on, read but not yet confirmed
        offset = 0  # bytes the server has confirmed
        eof = False
        failures = 0
        # Without a known size, read one byte beyond the chunk to tell whether it is the last.
        lookahead = 1 if self.total is None else 0
        while True:
            need = self.chunk_size + lookahead - len(pending)
            if self.total is not None:
                need = min(need, self.total - offset - len(pending))
            if need > 0 and not eof:
                more = self.reader.read(need)
                eof = len(more) < need
                data = pending + more if pending else more
            else:
                data = pending
            chunk = data if len(data) <= self.chunk_size else data[: self.chunk_size]
            if eof and len(data) <= self.chunk_size:
                self.total = offset + len(data)  # the source ended: this chunk is the last
            last = self.total is not None and offset + len(chunk) >= self.total
            # An unknown size stays "*" until the last chunk names it.
            total = _content_range_total(self.total if last or not lookahead else None)
            headers = {
                "Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{total}",
                "Content-Length": str(len(chunk)),
            }
            try:
                self.sent += len(chunk)
                resp, content = self.t.send(
                    "PUT", session, body=chunk, headers=headers, ok=(200, 201, 308), what=self.what
                )
            except Exception as exc:  # classified: retry or raise
                failures += 1
                done = self._recover(session, exc, failures)
                if isinstance(done, DriveFile):
                    self.progress.relative_update(len(data))
                    return done, self.sent
                new_offset = done
            else:
                failures = 0
                if resp.status in (200, 201):
                    self.progress.relative_update(len(data))
                    return DriveFile.from_api(json.loads(content)), self.sent
                new_offset = _committed(resp)
            self._check_position(new_offset, offset, offset + len(data))
            pending = data[new_offset - offset :]
            self.progress.relative_update(new_offset - offset)
            self.confirmed = offset = new_offset

    def _run_file(self, source: FileSource) -> tuple[DriveFile, int]:
        """Requests streamed from a seekable source; after a cut, re-read from the server's
        position instead of holding unconfirmed bytes in memory."""
        session = self._initiate()
        total = source.total
        offset = 0
        failures = 0
        while True:
            length = source.request_length(offset)
            headers = {
                "Content-Range": f"bytes {offset}-{offset + length - 1}/{total}",
                "Content-Length": str(length),
            }
            try:
                self.sent += length
                resp, content = self.t.send(
                    "PUT", session, body=source.body(offset, length), headers=headers,
                    ok=(200, 201, 308), what=self.what,
                )  # fmt: skip
            except SourceChanged:
                raise
            except Exception as exc:  # classified: retry or raise
                failures += 1
                done = self._recover(session, exc, failures)
                if isinstance(done, DriveFile):
                    self.progress.relative_update(total - offset)
                    return done, self.sent
                new_offset = done
            else:
                failures = 0
                if resp.status in (200, 201):
                    self.progress.relative_update(total - offset)
                    return DriveFile.from_api(json.loads(content)), self.sent
                new_offset = _committed(resp)
            self._check_position(new_offset, offset, offset + length)
            self.progress.relative_update(new_offset - offset)
            self.confirmed = offset = new_offset

    def _check_position(self, new_offset: int, offset: int, end: int) -> None:
        if new_offset < offset or new_offset > end:
            raise DriveError(
                f"Drive reported an impossible upload position ({new_offset}, we had "
                f"{offset} confirmed) for {self.what!r}; upload it again.",
                reason="badRange",
            )

    def _initiate(self) -> str:
        meta = self.target.metadata()
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "X-Upload-Content-Type": self.target.content_type,
        }
        if self.total is not None:
            headers["X-Upload-Content-Length"] = str(self.total)
        if self.target.file_id is not None:
            method, url = "PATCH", f"{self.t.upload_url}/{self.target.file_id}"
        else:
            method, url = "POST", self.t.upload_url
        url += f"?uploadType=resumable&fields={FILE_FIELDS}"
        body = json.dumps(meta).encode()

        def attempt() -> str:
            resp, _ = self.t.send(method, url, body=body, headers=headers, what=self.what)
            location = resp.get("location")
            if not location:
                raise DriveError(f"Drive started no upload session for {self.what!r}.")
            return location

        # Retrying an initiation is harmless: a session whose answer was lost is never used.
        return self.t.retrier.call(attempt, what=self.what, on_retry=self.progress.retry)

    def _recover(self, session: str, exc: BaseException, failures: int) -> DriveFile | int:
        """After a failed chunk: wait, then ask where the upload stands (retrying the query)."""
        retrier = self.t.retrier
        while True:
            error = map_exception(exc, what=self.what)
            if not isinstance(error, DriveError):
                raise error
            if isinstance(error, DriveNotFound) or error.status in (404, 410):
                # 404 (any body) or 410: the session expired or was dropped by the server.
                raise UploadSessionLost(
                    f"Drive no longer knows the upload session of {self.what!r} "
                    "(sessions expire after a week); the upload must start again.",
                    status=error.status,
                    reason=error.reason,
                ) from exc
            if not retrier.backoff(error, failures, self.progress.retry):
                raise error from (None if error is exc else exc)
            headers = {
                "Content-Range": f"bytes */{_content_range_total(self.total)}",
                "Content-Length": "0",
            }
            try:
                resp, content = self.t.send(
                    "PUT", session, body=b"", headers=headers, ok=(200, 201, 308), what=self.what
                )
            except Exception as query_exc:  # same classification, next round
                exc = query_exc
                failures += 1
                continue
            if resp.status in (200, 201):
                # The last chunk had landed; only its answer was lost.
                return DriveFile.from_api(json.loads(content))
            return _committed(resp)
