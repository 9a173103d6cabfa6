"""Content uploads: ``uploadType=media``, ``multipart`` and ``resumable`` (create and update)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from colab_magics.emulator.blobs import Blob, BlobWriter
from colab_magics.emulator.context import Context
from colab_magics.emulator.errors import DriveError, bad_request, invalid, not_found
from colab_magics.emulator.fields import FILE_DEFAULT, apply_fields, require_valid_fields
from colab_magics.emulator.metadata import file_changes, new_file
from colab_magics.emulator.multipart import Base64Sink, MultipartReader
from colab_magics.emulator.records import FileRecord
from colab_magics.emulator.resources import file_resource
from colab_magics.emulator.sessions import Session
from colab_magics.emulator.wire import (
    DISCONNECTED,
    iter_body,
    json_response,
    parse_content_range,
    parse_json,
    read_small_body,
)


def upload(ctx: Context, request: Request, file_id: str | None = None) -> Response:
    """``POST /upload/drive/v3/files`` (create) or ``PATCH …/files/{id}`` (update)."""
    if "upload_id" in request.args:
        return resumable_chunk(ctx, request)
    require_valid_fields(request.args.get("fields"), schema="File")
    kind = request.args.get("uploadType")
    if kind == "media":
        if file_id is None and request.content_length:
            # Refuse before taking the bytes in, as Drive does.
            ctx.store.check_quota(request.content_length)
        return _simple(ctx, request, file_id, {}, request.mimetype or None, _stream(ctx, request))
    if kind == "multipart":
        return _multipart(ctx, request, file_id)
    if kind == "resumable":
        return _initiate(ctx, request, file_id)
    if kind is None:
        raise bad_request("Upload requests must specify an uploadType url parameter.")
    raise invalid(f"Invalid upload type: {kind}.", location="uploadType")


def _stream(ctx: Context, request: Request) -> Blob:
    """The whole request body written to a new blob."""
    writer = ctx.store.blobs.writer()
    try:
        for block in iter_body(request.environ):
            writer.write(block)
    except BaseException as e:
        writer.discard()
        if isinstance(e, DISCONNECTED):
            raise bad_request("The request body ended early.") from None
        raise
    return writer.finish()


def _simple(
    ctx: Context,
    request: Request,
    file_id: str | None,
    metadata: dict[str, Any],
    media_type: str | None,
    blob: Blob,
) -> Response:
    try:
        record = _commit(ctx, request.args, file_id, metadata, media_type, blob)
    except BaseException:
        blob.path.unlink(missing_ok=True)
        raise
    return _file_answer(request.args.get("fields"), record)


def _commit(
    ctx: Context,
    args: Any,
    file_id: str | None,
    metadata: dict[str, Any],
    media_type: str | None,
    blob: Blob,
) -> FileRecord:
    """Create a file with ``blob`` as content, or replace the content of ``file_id``."""
    if media_type in ("", "*/*"):
        media_type = None
    if file_id is None:
        return ctx.store.create(new_file(metadata, media_type=media_type), blob)
    changes = file_changes(metadata)
    changes.add_parents = _split(args.get("addParents"))
    changes.remove_parents = _split(args.get("removeParents"))
    return ctx.store.update(file_id, changes, blob)


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def _multipart(ctx: Context, request: Request, file_id: str | None) -> Response:
    boundary = request.mimetype_params.get("boundary")
    # Drive's guide sends multipart/related; its upload server also takes multipart/mixed.
    if request.mimetype not in ("multipart/related", "multipart/mixed") or not boundary:
        raise bad_request("A multipart upload needs a multipart/related body with a boundary.")
    writer: BlobWriter | None = None
    try:
        reader = MultipartReader(iter_body(request.environ), boundary)
        reader.start()
        first = reader.headers()
        if first is None:
            raise bad_request("Malformed multipart body.")
        meta_parts: list[bytes] = []
        reader.body(meta_parts.append)
        metadata = parse_json(b"".join(meta_parts))
        media_headers = reader.headers()
        if media_headers is None:
            raise bad_request("A multipart upload needs a media part.")
        writer = ctx.store.blobs.writer()
        encoding = media_headers.get("content-transfer-encoding", "").strip().lower()
        if encoding == "base64":
            decoder = Base64Sink(writer.write)
            reader.body(decoder.write)
            decoder.close()
        elif encoding in ("", "binary", "8bit", "7bit"):
            reader.body(writer.write)
        else:
            raise bad_request(f"Unsupported Content-Transfer-Encoding: {encoding}.")
        blob = writer.finish()
    except BaseException as e:
        if writer is not None:
            writer.discard()
        if isinstance(e, DISCONNECTED):
            raise bad_request("The request body ended early.") from None
        raise
    media_type = media_headers.get("content-type", "").split(";")[0].strip() or None
    return _simple(ctx, request, file_id, metadata, media_type, blob)


def _initiate(ctx: Context, request: Request, file_id: str | None) -> Response:
    """Start a resumable session: 200 with the session URI in ``Location``."""
    metadata = parse_json(read_small_body(request))
    total_header = request.headers.get("X-Upload-Content-Length")
    total = None
    if total_header is not None:
        try:
            total = int(total_header)
        except ValueError:
            raise bad_request("Invalid X-Upload-Content-Length.") from None
        if total < 0:
            raise bad_request("Invalid X-Upload-Content-Length.")
    # Check now what would fail at the end, as Drive does.
    if file_id is None:
        spec = new_file(metadata)
        for parent in spec.parents or []:
            if ctx.store.get(parent) is None:
                raise not_found(parent)
        if total is not None:
            ctx.store.check_quota(total)
    else:
        record = ctx.store.require(file_id)
        file_id = record.id
        file_changes(metadata)
        if total is not None:
            ctx.store.check_quota(total - (record.size or 0))
    params = {k: v for k, v in request.args.items() if k not in ("upload_id",)}
    session = ctx.sessions.create(
        file_id=file_id,
        metadata=metadata,
        params=params,
        mime_type=request.headers.get("X-Upload-Content-Type"),
        total=total,
    )
    path = "upload/drive/v3/files" + (f"/{file_id}" if file_id else "")
    query = urlencode({**params, "uploadType": "resumable", "upload_id": session.id})
    location = f"{request.host_url}{path}?{query}"
    headers = {"Location": location, "X-GUploader-UploadID": session.id}
    return Response(b"", status=200, headers=headers, content_type="text/plain")


def resumable_chunk(ctx: Context, request: Request) -> Response:
    """A chunk (or a status query) sent to a session URI."""
    session = ctx.sessions.get(request.args["upload_id"])
    if session is None:
        raise DriveError(404, "notFound", "Upload session not found or expired.")
    header = request.headers.get("Content-Range")
    length = request.content_length
    if header is None:
        # No range: the body is all that is left (an empty file sends nothing at all).
        first, last = None, None
        final_total: int | None = session.received + (length or 0)
    else:
        first, last, final_total = parse_content_range(header)
        if first is None and length:
            raise bad_request("A status query must have an empty body.")
        if last is not None and length is not None and length != last - first + 1:
            raise bad_request("Content-Range does not match the length of the body.")
    if session.total is not None and final_total is not None and final_total != session.total:
        raise bad_request(
            f"Content-Range total {final_total} differs from the upload's size {session.total}."
        )
    status_query = header is not None and first is None
    if status_query and session.result_id is None and session.received != final_total:
        # Answered without waiting for a chunk still in flight (a hung client must not block
        # the status query that recovers from it); a stale answer only makes the client
        # resend bytes the session already has, which are skipped.
        return _incomplete(session)
    with ctx.sessions.lock(session.id):
        session = ctx.sessions.get(session.id) or session
        if session.result_id is not None:
            return _finished(ctx, session)
        if status_query:
            if session.received == final_total:
                return _complete(ctx, session)
            return _incomplete(session)
        start = session.received if first is None else first
        if start > session.received:
            return _gap(session, start)
        if header is None:
            final_total = session.received + (length or 0)
            if session.total is not None and final_total != session.total:
                raise bad_request("The body does not complete the upload's declared size.")
        is_final = final_total is not None and (last is None or last + 1 == final_total)
        complete = ctx.sessions.receive(
            session,
            start,
            iter_body(request.environ, length),
            final_total=final_total if is_final else None,
        )
        if complete:
            return _complete(ctx, session)
        return _incomplete(session)


def _gap(session: Session, start: int) -> Response:
    """A chunk starting past what the session holds: Google's upload server answers 503 with
    a plain-text body naming both offsets (public reports of its answer; the exact wording
    is not documented). The client must ask where the upload stands and resend from there."""
    text = (
        "Invalid request.  According to the Content-Range header, the upload offset is "
        f"{start} byte(s), which exceeds already uploaded size of {session.received} byte(s)."
    )
    return Response(text, status=503, content_type="text/plain; charset=utf-8")


def _incomplete(session: Session) -> Response:
    headers = {}
    if session.received > 0:
        headers["Range"] = f"bytes=0-{session.received - 1}"
    return Response(b"", status=308, headers=headers, content_type="text/plain")


def _complete(ctx: Context, session: Session) -> Response:
    blob = ctx.sessions.content(session)
    try:
        record = _commit(
            ctx, session.params, session.file_id, session.metadata, session.mime_type, blob
        )
    except DriveError:
        # The upload cannot land (quota, parent gone): the session is over, as on Drive.
        ctx.sessions.drop(session.id)
        raise
    ctx.sessions.complete(session, record.id)
    return _file_answer(session.params.get("fields"), record, _done_status(session))


def _finished(ctx: Context, session: Session) -> Response:
    assert session.result_id is not None
    record = ctx.store.require(session.result_id)
    return _file_answer(session.params.get("fields"), record, _done_status(session))


def _done_status(session: Session) -> int:
    """201 Created for a finished resumable create, 200 for new content of a file (Drive's
    "Upload file data": "200 OK or 201 Created"; google-api-python-client takes either)."""
    return 201 if session.file_id is None else 200


def _file_answer(fields: str | None, record: FileRecord, status: int = 200) -> Response:
    return json_response(
        apply_fields(file_resource(record), fields, default=FILE_DEFAULT, schema="File"), status
    )
