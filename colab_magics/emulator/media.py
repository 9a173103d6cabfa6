"""Content downloads: ``files.get`` with ``alt=media``, whole or by ``Range``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from werkzeug.wrappers import Request, Response

from colab_magics.emulator.errors import DriveError
from colab_magics.emulator.records import FileRecord
from colab_magics.emulator.resources import EXPORTS
from colab_magics.emulator.store import Store
from colab_magics.emulator.wire import JSON_TYPE, READ_BLOCK, RangeError, parse_range


def _stream(f: BinaryIO, length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            data = f.read(min(READ_BLOCK, length))
            if not data:
                return
            length -= len(data)
            yield data
    finally:
        f.close()


def download(store: Store, request: Request, record: FileRecord) -> Response:
    """The content of ``record``: 200 whole, 206 for a satisfiable ``Range``, else 416."""
    if record.is_folder or record.is_native:
        raise DriveError(
            403,
            "fileNotDownloadable",
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
            location="alt",
        )
    size = record.size or 0
    try:
        span = parse_range(request.headers.get("Range"), size)
    except RangeError:
        error = DriveError(416, "requestedRangeNotSatisfiable", "Request range not satisfiable")
        return Response(
            error.body_bytes(),
            status=416,
            headers={"Content-Range": f"bytes */{size}"},
            content_type=JSON_TYPE,
        )
    start, end = span if span is not None else (0, size - 1)
    length = end - start + 1 if size else 0
    headers = {"Content-Length": str(length), "Accept-Ranges": "bytes"}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    # Open now: an update may replace the blob, and the open file keeps this version readable.
    body: Iterator[bytes] = iter(())
    if record.blob and length:
        f = open(store.blobs.path(record.blob), "rb")  # noqa: SIM115 - closed by _stream
        f.seek(start)
        body = _stream(f, length)
    return Response(
        body,
        status=206 if span is not None else 200,
        headers=headers,
        content_type=record.mime_type,
        direct_passthrough=True,
    )


EXPORT_LIMIT = 10 * 1024 * 1024
"""Drive's files.export refuses content larger than 10 MB (``exportSizeLimitExceeded``)."""


def export(store: Store, request: Request, record: FileRecord) -> Response:
    """``files.export``: a Docs Editors file as one of the types it converts to.

    Drive's reference: "Exports a Google Workspace document to the requested MIME type ...
    limited to 10MB"; other files answer 403 ``fileNotExportable``.
    """
    kind = request.args.get("mimeType")
    if not kind:
        raise DriveError(400, "required", "Required parameter: mimeType", location="mimeType")
    if not record.is_native or record.mime_type not in EXPORTS:
        raise DriveError(
            403, "fileNotExportable", "Export only supports Docs Editors files.", location="fileId"
        )
    if kind not in EXPORTS[record.mime_type]:
        raise DriveError(
            400, "badRequest", "The requested conversion is not supported.", location="mimeType"
        )
    if (record.size or 0) > EXPORT_LIMIT:
        raise DriveError(403, "exportSizeLimitExceeded", "This file is too large to be exported.")
    data = b""
    if record.blob:
        data = store.blobs.path(record.blob).read_bytes()
    return Response(data, status=200, content_type=kind)
